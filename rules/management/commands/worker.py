"""``manage.py worker``: take jobs from the task queue, and keep the periodic jobs on time.

Run one or more per host (``make run`` starts one, ``make serve`` ``QUEUE_WORKERS`` of them).
Each worker claims queued jobs from the database (no two take the same job) and, on its own
clock, enqueues the periodic jobs that are due; a period's run is enqueued by exactly one
worker however many run.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

from django.core.management.base import BaseCommand
from django.utils.module_loading import import_string
from django_tasks_db.management.commands.db_worker import Worker

from rules.conf import rules_settings
from rules.jobs import periodic_due, scheduler_loop


class Command(BaseCommand):
    help = "Run a background worker: jobs from the task queue (simulations, re-evaluations, imports) and periodic jobs."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--interval", type=float, default=1.0, help="Seconds to wait when the queue is empty (default 1)."
        )
        parser.add_argument(
            "--tick", type=float, default=5.0, help="Seconds between two looks at the periodic jobs (default 5)."
        )
        parser.add_argument(
            "--batch",
            action="store_true",
            help="Enqueue the periodic jobs that are due, run everything queued, then exit.",
        )

    def handle(self, *args: Any, interval: float, tick: float, batch: bool, verbosity: int, **options: Any) -> None:
        self._configure_logging(verbosity)
        if rules_settings.WORKER_READY:
            import_string(rules_settings.WORKER_READY)()
        worker = Worker(
            queue_names=["*"],
            interval=interval,
            batch=batch,
            backend_name="default",
            startup_delay=not batch,
            max_tasks=None,
            worker_id=f"{socket.gethostname()}-{os.getpid()}"[:64],
            excluded_queue_names=[],
        )
        if batch:
            periodic_due()
            worker.run()
            return
        stop = threading.Event()
        clock = threading.Thread(target=scheduler_loop, args=(stop,), kwargs={"tick": tick}, daemon=True)
        clock.start()
        worker.configure_signals()
        try:
            worker.run()
        finally:
            stop.set()

    def _configure_logging(self, verbosity: int) -> None:
        level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
        for name in ("django_tasks_db", "django.tasks", "django_tasks", "rules.jobs"):
            logger = logging.getLogger(name)
            logger.setLevel(level)
            if not logger.handlers and not logging.getLogger().handlers:
                logger.addHandler(logging.StreamHandler(self.stdout))
