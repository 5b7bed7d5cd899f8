"""schemathesis against the running product (`make schemathesis`; CI runs it).

Serves the product as in production (debug off, `manage.py serve`) on a throw-away SQLite
database with the default rule pack and a gym of its own, whose key has every scope: the run
erases members, and it must never erase anyone else's. Then every phase of schemathesis
(examples, coverage, fuzzing, stateful) with every check, seeded and bounded by
schemathesis.toml, and the exit status of that run.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GYM = "Schemathesis Gym"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout


def wait_healthy(url: str, server: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"The server stopped before answering (exit status {server.returncode}).")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"The server did not answer {url} within {seconds:.0f} s.")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="schemathesis-") as folder:
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{folder}/db.sqlite3",
            "DJANGO_DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            # The run's requests are many and fast; the limit has tests of its own.
            "API_THROTTLE_RATE": os.environ.get("API_THROTTLE_RATE", "100000/minute"),
        }
        env.setdefault("DJANGO_SECRET_KEY", (ROOT / ".dev-secret-key").read_text().strip())
        manage(env, "migrate", "--noinput", "-v", "0")
        manage(env, "installpack")
        manage(env, "creategym", GYM)
        key = manage(env, "gymkey", GYM, "--name", "schemathesis").strip().splitlines()[-1]
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_healthy(f"{base}/healthz", server)
            command = [
                str(Path(sys.executable).parent / "schemathesis"),
                "--config-file",
                str(ROOT / "schemathesis.toml"),
                "run",
                f"{base}/api/schema/",
                "--header",
                f"Authorization: Bearer {key}",
                "--checks",
                "all",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                *sys.argv[1:],
            ]
            return subprocess.run(command, cwd=folder).returncode
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
