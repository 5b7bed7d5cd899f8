"""A host of the product in other processes, for tests of what only shows there: a database of
its own (a SQLite file, made as ``make setup`` makes it), gunicorn or ``manage.py serve`` on a
free port, and plain HTTP to it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

GYM_KEY = """
import django
django.setup()
from coaching.services import gym_create
print(gym_create(name="Host Gym")[1])
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(url: str, *, key: str = "", body: Any = None, headers: dict[str, str] | None = None) -> Answer:
    request = urllib.request.Request(url, method="GET" if body is None else "POST", headers=headers or {})
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
        request.data = json.dumps(body).encode()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return Answer(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, dict(error.headers), error.read())


@dataclass
class Host:
    """A product database in ``directory`` and the environment every process of the host shares."""

    directory: Path
    env: dict[str, str] = field(default_factory=dict)
    key: str = ""

    @classmethod
    def make(cls, directory: Path, database_url: str = "", **env: str) -> Host:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("PROMETHEUS_", "LOG_", "SENTRY_"))}
        base.pop("CACHE_URL", None)
        host = cls(
            directory=directory,
            env={
                **base,
                "DATABASE_URL": database_url or f"sqlite:///{directory / 'db.sqlite3'}",
                "DJANGO_SECRET_KEY": "host-test-" + "k" * 50,
                **env,
            },
        )
        host.manage("migrate", "-v0")
        host.manage("installpack")
        host.key = host.python(GYM_KEY).strip()
        return host

    @property
    def database(self) -> Path:
        return self.directory / "db.sqlite3"

    def manage(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=settings.BASE_DIR,
            env={**self.env, **env},
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def python(self, code: str, **env: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=settings.BASE_DIR,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    @contextmanager
    def gunicorn(self, *args: str, **env: str) -> Iterator[str]:
        """gunicorn with the product's configuration (config/gunicorn.py); yields its URL."""
        port = free_port()
        command = [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "config.wsgi"]
        command += ["--bind", f"127.0.0.1:{port}", "--workers", "1", "--log-level", "warning", *args]
        process = subprocess.Popen(command, cwd=settings.BASE_DIR, env={**self.env, **env})
        url = f"http://127.0.0.1:{port}"
        try:
            answering(url, process)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)


def answering(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    """Wait until ``/healthz`` answers at all (any status), while ``process`` runs."""
    deadline = time.monotonic() + seconds
    while True:
        assert process.poll() is None, f"the server stopped (exit {process.returncode})"
        try:
            call(f"{url}/healthz")
            return
        except OSError:
            assert time.monotonic() < deadline, f"the server did not answer within {seconds:.0f} s"
            time.sleep(0.2)
