"""Work that outlives a request, on a real task queue.

The queue is django-tasks with its database backend: a job is a row in the database (so it
survives a restart), taken by worker processes (``manage.py worker``, any number, on any
host; on PostgreSQL they claim rows with ``SELECT ... FOR UPDATE SKIP LOCKED``, so no two
take the same one). ``Job`` keeps what people see: status, progress, result, error, readable
from every web process.

- ``job_start(kind, ...)`` stores a job and its queue entry in one transaction; the domain
  (or this app) registers what a kind does with ``registry.register_job``.
- ``job_start_parts(kind, parts=...)`` does the same work in parts, each a job of its own that
  any worker on any host takes; the last part to finish combines the results into the whole
  job's (the kind's ``combine``), so heavy work spreads over every worker there is.
- A running job writes a heartbeat every few seconds. A job whose worker was killed stops
  beating; ``jobs_sweep`` (a periodic job) marks it cut off, so it can be started again.
- ``periodic_due`` enqueues each periodic job (``registry.register_periodic``) once per period,
  whichever worker gets there first: the (name, slot) row is unique.
- Each finished run sends ``rules.signals.job_finished`` (kind, outcome, seconds); ``queue_state``
  reads how many entries wait and for how long (both for metrics).
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import gc
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.db.models import F, Sum
from django.utils import timezone

try:  # Django 6 has the tasks framework built in; on 5.2 it is the django-tasks backport.
    from django.tasks import task
except ImportError:  # pragma: no cover - depends on the Django version
    from django_tasks import task

from rules.models import Job, PeriodicRun
from rules.registry import registry
from rules.signals import job_finished

logger = logging.getLogger(__name__)

MSG_FAILED = "It stopped with an error. The details are in the worker's log (job {id})."
MSG_CUT_OFF = "Its worker stopped before it finished (a restart or a crash). Start it again."
MSG_NO_HANDLER = "This kind of job is not known to this version of the product."

PROGRESS_EVERY = 0.5  # seconds between two progress writes


def _stale_after() -> dt.timedelta:
    return dt.timedelta(seconds=getattr(settings, "JOBS_STALE_SECONDS", 120))


def _heartbeat_every() -> float:
    return float(getattr(settings, "JOBS_HEARTBEAT_SECONDS", 10))


def job_start(kind: str, *, title: str, params: dict[str, Any] | None = None, user: Any = None) -> Job:
    """Store a job of ``kind`` and put it on the queue; a worker runs it."""
    if registry.job_handler(kind) is None:
        raise LookupError(f"No job handler is registered for {kind!r}.")
    with transaction.atomic():
        job = Job.objects.create(
            kind=kind,
            title=title[:200],
            params=params or {},
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        job_run.enqueue(str(job.pk))
    return job


def job_start_parts(
    kind: str,
    *,
    title: str,
    parts: list[dict[str, Any]],
    params: dict[str, Any] | None = None,
    user: Any = None,
) -> Job:
    """Store a job of ``kind`` done in ``parts``: each part's params are ``params`` updated with
    its own, and each part goes on the queue. Returns the whole job, which shows the parts'
    progress together and gets their combined result (``registry.register_job(combine=...)``)."""
    if registry.job_handler(kind) is None or registry.job_combiner(kind) is None:
        raise LookupError(f"No job handler that combines parts is registered for {kind!r}.")
    if not parts:
        raise ValueError("A job in parts needs at least one part.")
    if len(parts) == 1:  # one part is the whole: no combining, one row
        return job_start(kind, title=title, params={**(params or {}), **parts[0]}, user=user)
    created_by = user if getattr(user, "is_authenticated", False) else None
    common = params or {}
    with transaction.atomic():
        whole = Job.objects.create(kind=kind, title=title[:200], params=common, created_by=created_by)
        for index, own in enumerate(parts):
            part = Job.objects.create(
                kind=kind,
                title=f"{title} (part {index + 1} of {len(parts)})"[:200],
                params={**common, **own},
                created_by=created_by,
                parent=whole,
                part=index,
            )
            job_run.enqueue(str(part.pk))
    return whole


def job_get(job_id: Any) -> Job | None:
    """The job with this id, or None (also for ids that are not ids at all, e.g. from a URL)."""
    try:
        key = uuid.UUID(str(job_id))
    except ValueError:
        return None
    return Job.objects.filter(pk=key).first()


class _Heartbeat(threading.Thread):
    """Writes the running job's heartbeat until stopped (its own database connection)."""

    def __init__(self, job_id: Any) -> None:
        super().__init__(name=f"job-heartbeat-{str(job_id)[:8]}", daemon=True)
        self.job_id = job_id
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(_heartbeat_every()):
                try:
                    Job.objects.filter(pk=self.job_id, status=Job.Status.RUNNING).update(heartbeat_at=timezone.now())
                except Exception:  # a busy database: the next beat tries again
                    logger.debug("heartbeat of job %s not written", self.job_id, exc_info=True)
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()


def _progress_writer(job: Job) -> Callable[[int, int], None]:
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] < PROGRESS_EVERY and done < total:
            return
        last[0] = now
        job.done, job.total = done, total
        Job.objects.filter(pk=job.pk).update(done=done, total=total, heartbeat_at=timezone.now())
        if job.parent_id is not None:
            _whole_progress(job.parent_id)

    return progress


def _whole_progress(whole_id: Any) -> None:
    """The whole job's progress: its parts' together."""
    sums = Job.objects.filter(parent_id=whole_id).aggregate(done=Sum("done"), total=Sum("total"))
    Job.objects.filter(pk=whole_id, status__in=[Job.Status.QUEUED, Job.Status.RUNNING]).update(
        done=sums["done"] or 0, total=sums["total"] or 0, heartbeat_at=timezone.now()
    )


@task()
def job_run(job_id: str) -> str:
    """Run one stored job (the queue's entry point). Returns the job's final status."""
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
        status=Job.Status.RUNNING, started_at=now, heartbeat_at=now, attempts=F("attempts") + 1
    )
    if not claimed:  # cut off and started again, or already taken
        return "skipped"
    started = time.monotonic()
    job = Job.objects.get(pk=job_id)
    if job.parent_id is not None:  # the first part to start starts the whole
        Job.objects.filter(pk=job.parent_id, status=Job.Status.QUEUED).update(
            status=Job.Status.RUNNING, started_at=now, heartbeat_at=now
        )
    handler = registry.job_handler(job.kind)
    if handler is None:
        _finish(job, Job.Status.FAILED, error=MSG_NO_HANDLER)
        _finished(job.kind, job.status, started)
        return job.status
    heartbeat = _Heartbeat(job.pk)
    heartbeat.start()
    result = None
    try:
        result = handler(job, _progress_writer(job))
    except Exception:
        logger.exception("job %s (%s) failed", job.pk, job.kind)
        _finish(job, Job.Status.FAILED, error=MSG_FAILED.format(id=job.pk))
    else:
        _finish(job, Job.Status.DONE, result=result)
    finally:
        heartbeat.stop()
    _finished(job.kind, job.status, started)
    if job.parent_id is not None:
        _whole_finish(job.parent_id)
    status = job.status
    del job, result  # the result of a long job is large
    _memory_release()
    return status


def _memory_release() -> None:
    """Give the memory a large job freed back to the system (glibc keeps it otherwise), so that a
    worker's size is that of its largest job, not of the jobs it ran."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _whole_finish(whole_id: Any) -> None:
    """Finish the whole job once its parts are: failed as soon as one part failed or was cut
    off, else, when every part is done, with the parts' results combined. Safe when parts
    finish at once: the whole's row is locked, and only a running whole is finished."""
    combined = None
    with transaction.atomic():
        whole = Job.objects.select_for_update().filter(pk=whole_id).first()
        if whole is None or whole.status not in (Job.Status.QUEUED, Job.Status.RUNNING):
            return
        # The parts' results are read only to combine them, one at a time: a long job's are large.
        parts = list(Job.objects.filter(parent_id=whole_id).order_by("part").values("pk", "status", "error"))
        broken = next((p for p in parts if p["status"] in (Job.Status.FAILED, Job.Status.CUT_OFF)), None)
        if broken is None and any(p["status"] != Job.Status.DONE for p in parts):
            _whole_progress(whole_id)
            return
        if broken is not None:
            _finish(whole, broken["status"], error=broken["error"])
            return
        combine = registry.job_combiner(whole.kind)
        try:
            results = (Job.objects.filter(pk=p["pk"]).values_list("result", flat=True).first() for p in parts)
            combined = combine(results) if combine else None
        except Exception:
            logger.exception("the parts of job %s (%s) could not be combined", whole.pk, whole.kind)
            _finish(whole, Job.Status.FAILED, error=MSG_FAILED.format(id=whole.pk))
            return
        whole.done = whole.total = Job.objects.filter(parent_id=whole_id).aggregate(total=Sum("total"))["total"] or 0
        _finish(whole, Job.Status.DONE, result=combined)


def _finished(kind: str, outcome: str, started: float) -> None:
    try:
        job_finished.send(sender=Job, kind=kind, outcome=outcome, seconds=time.monotonic() - started)
    except Exception:  # an observer's failure is no failure of the job
        logger.warning("job_finished receivers failed", exc_info=True)


def _finish(job: Job, status: str, *, result: Any = None, error: str = "") -> None:
    job.status, job.result, job.error, job.finished_at = status, result, error, timezone.now()
    if status == Job.Status.DONE and job.total:
        job.done = job.total
    # Only a job still marked running is finished: a sweep may have marked it cut off meanwhile.
    Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(
        status=status, result=result, error=error, finished_at=job.finished_at, done=job.done, total=job.total
    )


# -- periodic work -----------------------------------------------------------------------------
@task()
def periodic_run(name: str) -> Any:
    """Run the periodic job ``name`` (the queue's entry point)."""
    for periodic in registry.periodic():
        if periodic.name == name:
            started = time.monotonic()
            try:
                result = periodic.function()
            except Exception:
                _finished(name, Job.Status.FAILED, started)
                raise
            _finished(name, Job.Status.DONE, started)
            return result
    logger.warning("periodic job %s is not registered; skipped", name)
    return None


def periodic_due(now: float | None = None) -> list[str]:
    """Enqueue every periodic job whose period has begun and that no worker enqueued yet.

    Returns the names this call enqueued. Safe to call from every worker at once: a period's
    (name, slot) row is unique, so exactly one of them enqueues it.
    """
    now = time.time() if now is None else now
    enqueued = []
    for periodic in registry.periodic():
        slot = int(now // periodic.every_seconds)
        try:
            with transaction.atomic():
                PeriodicRun.objects.create(name=periodic.name, slot=slot)
                periodic_run.enqueue(periodic.name)
        except IntegrityError:
            continue
        enqueued.append(periodic.name)
    return enqueued


def jobs_sweep() -> dict[str, int]:
    """Mark jobs whose worker stopped as cut off, and forget old bookkeeping."""
    now = timezone.now()
    cut_off = Job.objects.filter(
        status=Job.Status.RUNNING, heartbeat_at__lt=now - _stale_after(), parts__isnull=True
    ).update(status=Job.Status.CUT_OFF, error=MSG_CUT_OFF, finished_at=now)
    # A whole job is cut off with the first of its parts.
    Job.objects.filter(status__in=[Job.Status.QUEUED, Job.Status.RUNNING], parts__status=Job.Status.CUT_OFF).update(
        status=Job.Status.CUT_OFF, error=MSG_CUT_OFF, finished_at=now
    )
    keep = dt.timedelta(days=getattr(settings, "JOBS_KEEP_DAYS", 30))
    forgotten, _ = Job.objects.filter(finished_at__lt=now - keep).delete()
    PeriodicRun.objects.filter(created_at__lt=now - dt.timedelta(days=1)).delete()
    _queue_prune(now - keep)
    return {"cut_off": cut_off, "forgotten": forgotten}


@dataclass(frozen=True)
class QueueState:
    """The task queue as a scrape sees it: entries waiting for a worker and running now, and
    how long the oldest waiting one has waited (0 when none waits)."""

    waiting: int
    running: int
    oldest_wait_seconds: float


def queue_state() -> QueueState:
    try:
        from django_tasks_db.models import DBTaskResult
    except ImportError:  # pragma: no cover - another task backend
        return QueueState(0, 0, 0.0)
    waiting = DBTaskResult.objects.ready()
    oldest = waiting.order_by("enqueued_at").values_list("enqueued_at", flat=True).first()
    return QueueState(
        waiting=waiting.count(),
        running=DBTaskResult.objects.running().count(),
        oldest_wait_seconds=max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0,
    )


def _queue_prune(before: dt.datetime) -> None:
    """The queue's own finished entries, once they are older than the jobs we keep."""
    try:
        from django_tasks_db.models import DBTaskResult
    except ImportError:  # pragma: no cover - another task backend
        return
    DBTaskResult.objects.finished().filter(finished_at__lt=before).delete()


def scheduler_loop(stop: threading.Event, *, tick: float = 5.0) -> None:
    """The worker's clock: enqueue due periodic jobs every ``tick`` seconds until ``stop``."""
    try:
        while True:
            close_old_connections()
            try:
                periodic_due()
            except Exception:  # a busy or briefly unreachable database: try again next tick
                logger.warning("periodic jobs not enqueued this time", exc_info=True)
            if stop.wait(tick):
                return
    finally:
        connection.close()
