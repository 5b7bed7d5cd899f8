"""The API benchmark's servers and databases: the product and the bare endpoint, served the
way ``make run`` and ``make serve`` serve the product, each on a database of its own.

A shape is how the product is served (``manage.py serve`` and its arguments) on which
database: ``make run`` on a SQLite file, ``make serve`` on PostgreSQL. The bare endpoint
(bench/bare/) is served by the same command with ``DJANGO_SETTINGS_MODULE=bench.bare.settings``,
so gunicorn, its workers, threads and config are the product's.

Databases are made once per shape (migrate, installpack, creategym) and copied, so the product
and the bare endpoint start from the same rows and the same gym key: SQLite files are copied,
PostgreSQL databases are created from a template. Nothing touches the developer's database; the
PostgreSQL databases (``bench_rlbp*``) are dropped at the end.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench.common import ROOT, temp_sqlite_path

START_TIMEOUT = 90.0
THROTTLE_RATE = "10000000/day"  # far above what the bench sends: the limit never answers 429
PG_NAME = "bench_rlbp"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(database_url: str, settings: str = "config.settings") -> dict[str, str]:
    """The environment of a bench server or command: debug off, quiet logs, a high rate limit."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "DJANGO_SETTINGS_MODULE",
            "DJANGO_HTTPS",
            "CACHE_URL",
            "PROMETHEUS_MULTIPROC_DIR",
            "WEB_CONCURRENCY",
            "WEB_THREADS",
            "QUEUE_WORKERS",
        )
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": settings,
            "DATABASE_URL": database_url,
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": os.environ.get("BENCH_SECRET_KEY") or secrets.token_urlsafe(48),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "API_THROTTLE_RATE": THROTTLE_RATE,
            "LOG_LEVEL": "ERROR",
            "REQUEST_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def manage_ok(env: dict[str, str], *args: str) -> str:
    done = manage(env, *args)
    if done.returncode:
        raise SystemExit(f"bench: manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def database_prepare(env: dict[str, str]) -> str:
    """Migrate, install the rule pack, create the gym ``bench``; its API key."""
    manage_ok(env, "migrate", "--noinput")
    manage_ok(env, "installpack")
    return manage_ok(env, "creategym", "bench").strip().splitlines()[-1].strip()


# -- databases --------------------------------------------------------------------------
class SqliteDatabases:
    """A migrated template file, and fresh copies of it."""

    kind = "SQLite"

    def __init__(self) -> None:
        self.template = temp_sqlite_path("api-template")
        self.key = database_prepare(base_env(self.url(self.template)))

    @staticmethod
    def url(path: str) -> str:
        return f"sqlite:///{path}"

    def copy(self, tag: str) -> str:
        path = temp_sqlite_path(f"api-{tag}")
        shutil.copyfile(self.template, path)
        for suffix in ("-wal", "-shm"):
            if os.path.exists(self.template + suffix):
                shutil.copyfile(self.template + suffix, path + suffix)
        return self.url(path)

    def close(self) -> None:
        pass  # temp_sqlite_path deletes the files at exit


def postgres_server() -> tuple[str | None, str]:
    """A PostgreSQL server URL to create the bench's databases on, and how it was found.

    ``BENCH_DATABASE_URL`` (any database of the server, with a role that may create
    databases), else a local cluster that ``pg_lsclusters`` reports online, reached on
    127.0.0.1 as PGUSER/PGPASSWORD or the role ``ci`` (password ``ci``) that .ci/run uses.
    """
    given = os.environ.get("BENCH_DATABASE_URL", "").strip()
    if given:
        return given, "BENCH_DATABASE_URL"
    try:
        listing = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None, "no BENCH_DATABASE_URL, and no pg_lsclusters"
    ports = [line.split()[2] for line in listing.stdout.splitlines() if len(line.split()) > 3 and "online" in line]
    if not ports:
        return None, "no BENCH_DATABASE_URL, and pg_lsclusters shows no cluster online"
    credentials = []
    if os.environ.get("PGUSER"):
        credentials.append((os.environ["PGUSER"], os.environ.get("PGPASSWORD", "")))
    credentials.append(("ci", "ci"))
    import psycopg

    for port in ports:
        for user, password in credentials:
            url = f"postgres://{user}:{password}@127.0.0.1:{port}/postgres"
            try:
                psycopg.connect(url, connect_timeout=3).close()
            except psycopg.Error:
                continue
            return url, f"local cluster on port {port} (pg_lsclusters), role {user}"
    return None, f"pg_lsclusters shows port(s) {', '.join(ports)} online, but no role could connect"


class PostgresDatabases:
    """``bench_rlbp_template`` made once; ``bench_rlbp_<tag>`` databases created from it; all dropped in close()."""

    kind = "PostgreSQL"

    def __init__(self, server_url: str) -> None:
        import psycopg

        self.server_url = server_url
        self.admin = psycopg.connect(server_url, autocommit=True, connect_timeout=5)
        self.made: list[str] = []
        self.template = f"{PG_NAME}_template"
        self._create(self.template)
        self.key = database_prepare(base_env(self.url(self.template)))

    @classmethod
    def empty(cls, server_url: str, tag: str) -> PostgresDatabases:
        """One empty database ``bench_rlbp_<tag>``, without the template (dropped in close())."""
        import psycopg

        databases = cls.__new__(cls)
        databases.server_url = server_url
        databases.admin = psycopg.connect(server_url, autocommit=True, connect_timeout=5)
        databases.made = []
        databases._create(f"{PG_NAME}_{tag}")
        return databases

    def url(self, name: str) -> str:
        parts = urlsplit(self.server_url)
        return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))

    def _create(self, name: str, template: str | None = None) -> None:
        self._drop(name)
        self.admin.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        self.made.append(name)

    def _drop(self, name: str) -> None:
        import psycopg

        try:
            self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except psycopg.errors.SyntaxError:  # PostgreSQL before 13
            self.admin.execute(f'DROP DATABASE IF EXISTS "{name}"')

    def copy(self, tag: str) -> str:
        name = f"{PG_NAME}_{tag}"
        self._create(name, template=self.template)
        return self.url(name)

    def close(self) -> None:
        for name in reversed(self.made):
            with contextlib.suppress(Exception):
                self._drop(name)
        self.made.clear()
        self.admin.close()


# -- shapes and servers -----------------------------------------------------------------
@dataclass(frozen=True)
class Shape:
    name: str  # "make run" or "make serve"
    serve_args: tuple[str, ...]  # manage.py serve's arguments, as the Makefile's target gives them
    queue_workers: int

    def label(self, database: str) -> str:
        return f"{self.name} ({database}): manage.py serve {' '.join(self.serve_args)}"


MAKE_RUN = Shape("make run", ("--web-concurrency", "2", "--threads", "1"), queue_workers=1)
MAKE_SERVE = Shape("make serve", ("--web-concurrency", "2"), queue_workers=1)


@dataclass(frozen=True)
class Target:
    name: str  # "product" or "bare"
    settings: str
    evaluates: bool  # the product runs its queue workers; the bare endpoint enqueues nothing


PRODUCT = Target("product", "config.settings", evaluates=True)
BARE = Target("bare", "bench.bare.settings", evaluates=False)


@dataclass
class ProcessMemory:
    role: str
    pid: int
    rss_mb: dict[str, float] = field(default_factory=dict)  # moment -> MB


class Server:
    """``manage.py serve`` for one target and shape on a free loopback port, in its own process group."""

    def __init__(self, target: Target, shape: Shape, database_url: str) -> None:
        self.target = target
        self.shape = shape
        self.port = free_port()
        self.env = base_env(database_url, target.settings)
        queue_workers = shape.queue_workers if target.evaluates else 0
        self.command = [
            sys.executable,
            "manage.py",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *shape.serve_args,
            "--queue-workers",
            str(queue_workers),
        ]
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.memory: dict[int, ProcessMemory] = {}

    @property
    def label(self) -> str:
        return f"{self.target.name}: DJANGO_SETTINGS_MODULE={self.target.settings} {' '.join(self.command[1:])}"

    def wait_ready(self) -> None:
        from bench.api import request

        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"bench.api: the {self.target.name} server exited early:\n{self.output()}")
            try:
                status, _ = request(self.port, "GET", "/healthz")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise SystemExit(f"bench.api: the {self.target.name} server did not answer /healthz in {START_TIMEOUT:.0f} s")

    def processes(self) -> list[tuple[str, Any]]:
        """(role, psutil.Process) of every process of the server: serve, gunicorn's master and
        workers, the queue workers."""
        import psutil

        try:
            root = psutil.Process(self.process.pid)
            found = [root, *root.children(recursive=True)]
        except psutil.Error:
            return []
        roles = []
        for process in found:
            try:
                cmdline = " ".join(process.cmdline())
                parent = process.parent()
                parent_cmd = " ".join(parent.cmdline()) if parent else ""
            except psutil.Error:
                continue
            if "gunicorn" in cmdline:
                role = "gunicorn worker" if "gunicorn" in parent_cmd else "gunicorn master"
            elif " worker" in cmdline:
                role = "queue worker"
            elif " serve" in cmdline:
                role = "manage.py serve"
            else:
                role = "other"
            roles.append((role, process))
        return roles

    def snapshot(self, moment: str) -> None:
        """Record the RSS of each of the server's processes under ``moment``."""
        import psutil

        for role, process in self.processes():
            try:
                rss = process.memory_info().rss / 2**20
            except psutil.Error:
                continue
            entry = self.memory.setdefault(process.pid, ProcessMemory(role, process.pid))
            entry.rss_mb[moment] = rss

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()
