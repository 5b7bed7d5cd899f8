"""The coaching domain's work on the task queue (``rules.jobs``).

- ``reevaluate``: the admin's "re-run evaluation" of many members, off the request.
- ``import-events``: a file of events uploaded in the admin (``coaching.imports``).
- ``evaluations-complete`` (periodic): events whose evaluation failed or was cut off (a killed
  process, a busy database) are judged again without an operator. Judging a member is
  idempotent and serialized by the member's lock, so a run that overlaps a request, or a
  second worker, never doubles advice.
- ``rate-counters-prune`` (periodic, hourly): the rate limit's counters of ended windows.
- ``webhooks-deliver`` (periodic) and ``webhooks-prune`` (periodic, daily): webhook messages
  that are due, and old ones delivered or given up (``coaching.webhooks``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import Any

from django.conf import settings

from rules.jobs import job_start_parts
from rules.models import Job

from . import services, webhooks
from .imports import IMPORT_JOB, event_import_run
from .models import EventImport, Member

REEVALUATE_JOB = "reevaluate"
PART_MIN_MEMBERS = 200


def reevaluate_start(starts: dict[int, dt.datetime], *, user: Any = None, parts: int | None = None) -> Job:
    """Re-judge each member (pk) from the given moment on, as a job on the queue, in up to
    ``parts`` parts (default ``JOBS_PARTS``) that any worker takes; a member is judged in one
    part only, so the parts' sums are the whole's."""
    count = len(starts)
    title = f"Re-run evaluation of {count} member{'s' if count != 1 else ''}"
    members = [(str(pk), at.isoformat()) for pk, at in sorted(starts.items())]
    if parts is None:
        # Parts of fewer members than this cost more in queue round trips than they save.
        parts = min(int(getattr(settings, "JOBS_PARTS", 2)), len(members) // PART_MIN_MEMBERS)
    split = max(1, min(parts, len(members)))
    shares = [dict(members[index::split]) for index in range(split)]
    return job_start_parts(REEVALUATE_JOB, title=title, parts=[{"members": share} for share in shares], user=user)


def reevaluate_job(job: Job, progress: Callable[[int, int], None]) -> dict[str, int]:
    starts = job.params["members"]
    total = services.ReevaluationResult()
    for done, (pk, at) in enumerate(starts.items(), start=1):
        member = Member.objects.filter(pk=int(pk)).first()
        if member is not None:  # erased meanwhile: nothing to judge
            result = services.events_reevaluate(member=member, since=dt.datetime.fromisoformat(at))
            for name, value in asdict(result).items():
                setattr(total, name, getattr(total, name) + value)
        progress(done, len(starts))
    return asdict(total)


def reevaluate_combine(results: Iterable[dict[str, int]]) -> dict[str, int]:
    combined: dict[str, int] = {}
    for result in results:
        for name, value in result.items():
            combined[name] = combined.get(name, 0) + value
    return combined


def import_job(job: Job, progress: Callable[[int, int], None]) -> dict[str, Any]:
    upload = event_import_run(upload=EventImport.objects.get(pk=job.params["import"]), progress=progress)
    if upload.problem:
        return {"file_not_read": upload.problem}
    return {"events_created": upload.created, "repeats": upload.repeated, "bad_lines": upload.bad_count}


def evaluations_complete() -> dict[str, int]:
    """Judge every event still waiting for its evaluation (the periodic job)."""
    return asdict(services.events_reevaluate(pending=True))


def jobs_register(registry: Any) -> None:
    registry.register_job(REEVALUATE_JOB, reevaluate_job, combine=reevaluate_combine)
    registry.register_job(IMPORT_JOB, import_job)
    every = int(getattr(settings, "EVALUATIONS_COMPLETE_SECONDS", 60))
    registry.register_periodic("evaluations-complete", every, evaluations_complete)
    registry.register_periodic("rate-counters-prune", 3600, services.rate_counters_prune)
    # Deliveries are asked for when a change is written; this catches retries and anything missed.
    registry.register_periodic(
        "webhooks-deliver", int(getattr(settings, "WEBHOOKS_DELIVER_SECONDS", 15)), webhooks.deliveries_run
    )
    registry.register_periodic("webhooks-prune", 24 * 3600, webhooks.messages_prune)
