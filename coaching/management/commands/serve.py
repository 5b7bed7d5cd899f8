"""``manage.py serve``: the web server and the queue workers of one host, kept running together.

gunicorn serves the product with ``--web-concurrency`` processes (gunicorn restarts one that
dies), each serving one request at a time unless ``--threads`` says more: on CPython, threads of
one process take turns on the interpreter lock, and an API request, mostly Python, then waits for
it, so processes serve more than threads (docs/benchmarks.md). Slow clients are a reverse proxy's
job (docs/deployment.md). Beside it run ``--queue-workers`` task-queue workers (``manage.py worker``), each
restarted if it dies. Ctrl+C or SIGTERM stops them all gracefully. ``make run`` and
``make serve`` call this; on several hosts, run it on each (or run gunicorn and the workers
under your own supervisor: they need nothing from each other but the database).

Before starting them it runs Django's deployment checks (``check --deploy``) and logs what
they find, so a production start with an insecure setting says so in the log. Its own lines
go through logging like every other process's (JSON with ``LOG_FORMAT=json``).
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.management.base import BaseCommand, CommandError

logger = logging.getLogger("coaching.serve")

RESTART_PAUSE = 1.0  # seconds before a queue worker that died is started again
# Tells config/gunicorn.py that this command emptied the metrics directory before any process
# started: gunicorn emptying it later would remove the files the queue workers already write.
METRICS_DIR_EMPTIED = "RLBP_METRICS_DIR_EMPTIED"

MSG_SERVING = "Serving on http://{address}/ with {web} web process(es) and {queue} queue worker(s)."
MSG_WORKER_RESTART = "Queue worker {pid} stopped (exit {code}); starting another."
MSG_DEPLOY_CHECKS_CLEAN = "Deployment checks (check --deploy): no issues."


def deploy_checks_log() -> int:
    """Run Django's deployment checks and log each finding; returns how many there were."""
    found = [m for m in checks.run_checks(include_deployment_checks=True) if not m.is_silenced()]
    for message in found:
        level = logging.ERROR if message.is_serious() else logging.WARNING
        hint = f" HINT: {message.hint}" if message.hint else ""
        logger.log(level, "check --deploy: %s: %s%s", message.id, message.msg, hint, extra={"check": message.id})
    if not found:
        logger.info(MSG_DEPLOY_CHECKS_CLEAN)
    return len(found)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value.strip() else default
    except ValueError:
        raise CommandError(f"{name} must be a whole number, not {value!r}.") from None


class Command(BaseCommand):
    help = (
        "Serve the product: gunicorn with WEB_CONCURRENCY processes on HOST:PORT, and QUEUE_WORKERS task-queue workers."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"), help="Address (env HOST).")
        parser.add_argument("--port", type=int, default=_env_int("PORT", 8000), help="Port (env PORT, default 8000).")
        parser.add_argument(
            "--web-concurrency",
            type=int,
            default=_env_int("WEB_CONCURRENCY", 2),
            help="gunicorn worker processes (env WEB_CONCURRENCY, default 2).",
        )
        parser.add_argument(
            "--threads",
            type=int,
            default=_env_int("WEB_THREADS", 1),
            help=(
                "Threads per web process (env WEB_THREADS, default 1: gunicorn's sync worker, one request "
                "at a time; more: the gthread worker)."
            ),
        )
        parser.add_argument(
            "--queue-workers",
            type=int,
            default=_env_int("QUEUE_WORKERS", 1),
            help="Task-queue workers on this host (env QUEUE_WORKERS, default 1; 0: none).",
        )

    def handle(
        self, *args: Any, host: str, port: int, web_concurrency: int, threads: int, queue_workers: int, **options: Any
    ) -> None:
        if web_concurrency < 1 or threads < 1 or queue_workers < 0:
            raise CommandError("WEB_CONCURRENCY and the threads must be at least 1, QUEUE_WORKERS at least 0.")
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        web_command = [
            sys.executable, "-m", "gunicorn", "config.wsgi",
            "--bind", f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
            "--workers", str(web_concurrency), "--threads", str(threads),
            "--error-logfile", "-", "--graceful-timeout", "10",  # requests: the product's own log lines
        ]  # fmt: skip
        gunicorn_config = Path(settings.BASE_DIR) / "config" / "gunicorn.py"
        if gunicorn_config.exists():
            web_command += ["--config", str(gunicorn_config)]
        worker_command = [sys.executable, manage, "worker", "--verbosity", "1"]

        deploy_checks_log()

        # /metrics adds up the figures of every process of this host, web and queue workers: they
        # write them to files in one directory (a fresh one for this run unless
        # PROMETHEUS_MULTIPROC_DIR names one, which is emptied of an earlier run's figures now,
        # before any process writes there).
        env = dict(os.environ)
        own_metrics_dir = None
        if not env.get("PROMETHEUS_MULTIPROC_DIR"):
            own_metrics_dir = tempfile.mkdtemp(prefix="rlbp-metrics-")
            env["PROMETHEUS_MULTIPROC_DIR"] = own_metrics_dir
        else:
            os.makedirs(env["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
            for path in glob.glob(os.path.join(env["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
                os.remove(path)
        env[METRICS_DIR_EMPTIED] = "1"

        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        # Our own interpreter and fixed arguments: nothing from outside is executed.
        web = subprocess.Popen(web_command, env=env)  # noqa: S603
        workers = [subprocess.Popen(worker_command, env=env) for _ in range(queue_workers)]  # noqa: S603
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        logger.info(MSG_SERVING.format(address=address, web=web_concurrency, queue=queue_workers))
        try:
            while not stopping and web.poll() is None:
                for n, worker in enumerate(workers):
                    if worker.poll() is not None:
                        logger.warning(MSG_WORKER_RESTART.format(pid=worker.pid, code=worker.returncode))
                        time.sleep(RESTART_PAUSE)
                        workers[n] = subprocess.Popen(worker_command, env=env)  # noqa: S603
                time.sleep(0.5)
        finally:
            for process in [web, *workers]:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 20
            for process in [web, *workers]:
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
            if own_metrics_dir:
                shutil.rmtree(own_metrics_dir, ignore_errors=True)
        if not stopping and web.returncode:
            raise CommandError(f"gunicorn stopped (exit {web.returncode}).")
