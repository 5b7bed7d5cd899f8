"""Prometheus metrics of the product (``GET /metrics``, described in docs/api.md).

Services, the request middleware and the queue's jobs (``rules.signals.job_finished``,
connected in ``CoachingConfig.ready``) report through the small functions here; nothing else
imports ``prometheus_client``. With several processes (gunicorn workers, queue workers) set
``PROMETHEUS_MULTIPROC_DIR`` to one empty directory before they start (``manage.py serve``
does): each process then writes its figures to files there and a scrape, answered by any web
process, adds up the files of all processes of the host (prometheus_client's multiprocess
mode). Without it, a scrape reports the one process it reaches. The pending evaluations and
the queue's depth and age are read from the database at scrape time, so every process
answers the same.
"""

from __future__ import annotations

import os
import time
from collections import Counter as Tally
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

from .models import Advice, Event
from .selectors import evaluations_pending_count

REQUESTS = Counter(
    "rlbp_http_requests", "HTTP requests answered, by method, view and status.", ["method", "view", "status"]
)
EVENTS_STORED = Counter("rlbp_events_stored", "Events stored (repeats not counted), by event type.", ["type"])
ADVICE_GIVEN = Counter("rlbp_advice_given", "Advice given, by rule key and severity.", ["rule", "severity"])
ADVICE_WITHDRAWN = Counter(
    "rlbp_advice_withdrawn",
    "Advice withdrawn (by a late event or a re-evaluation), by rule key and severity.",
    ["rule", "severity"],
)
EVALUATION_SECONDS = Histogram(
    "rlbp_evaluation_seconds",
    "Time to judge a member's events and store what changed (one per ingest or re-evaluation of a member).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
EVALUATIONS_FAILED = Counter(
    "rlbp_evaluations_failed", "Evaluations that failed (the events stay stored, waiting for a later evaluation)."
)

INGEST_CONFLICTS = Counter(
    "rlbp_ingest_conflicts",
    "Ingests that met a concurrent write to one of their members, by what followed: judged again "
    "(again) or, after several, judged with their members locked (locked).",
    ["then"],
)


JOBS = Counter(
    "rlbp_jobs",
    "Jobs run by the queue workers (imports, re-evaluations, simulations, periodic jobs), by kind and outcome.",
    ["kind", "outcome"],
)
JOB_SECONDS = Histogram(
    "rlbp_job_seconds",
    "How long a job of the queue ran, by kind.",
    ["kind"],
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600),
)
EVENTS_IMPORTED = Counter(
    "rlbp_events_imported",
    "Lines of imported files of events (importevents, the admin's upload), by outcome: created, repeat or bad.",
    ["outcome"],
)


WEBHOOK_DELIVERIES = Counter(
    "rlbp_webhook_deliveries",
    "Webhook delivery attempts, by outcome: delivered, failed (retried later) or given_up (after 24 hours).",
    ["outcome"],
)


def webhook_delivered(*, outcome: str) -> None:
    WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()


def request_observed(*, method: str, view: str, status: int) -> None:
    REQUESTS.labels(method=method, view=view, status=str(status)).inc()


def events_stored(events: Iterable[Event]) -> None:
    for type_, n in Tally(event.type for event in events).items():
        EVENTS_STORED.labels(type=type_).inc(n)


def advice_changed(*, created: Iterable[Advice] = (), withdrawn: Iterable[Advice] = ()) -> None:
    for (rule, severity), n in Tally((a.rule_key, a.severity) for a in created).items():
        ADVICE_GIVEN.labels(rule=rule, severity=severity).inc(n)
    for (rule, severity), n in Tally((a.rule_key, a.severity) for a in withdrawn).items():
        ADVICE_WITHDRAWN.labels(rule=rule, severity=severity).inc(n)


def job_observed(*, kind: str, outcome: str, seconds: float, **signal: Any) -> None:
    """A receiver of ``rules.signals.job_finished``."""
    JOBS.labels(kind=kind, outcome=str(outcome)).inc()
    JOB_SECONDS.labels(kind=kind).observe(seconds)


def events_imported(*, created: int, repeated: int, bad: int) -> None:
    for outcome, n in (("created", created), ("repeat", repeated), ("bad", bad)):
        if n:
            EVENTS_IMPORTED.labels(outcome=outcome).inc(n)


def ingest_conflict(*, then: str) -> None:
    INGEST_CONFLICTS.labels(then=then).inc()


def evaluations_observed(seconds: Iterable[float]) -> None:
    """Evaluations of members judged together (each one's share of the batched engine call)."""
    for each in seconds:
        EVALUATION_SECONDS.observe(each)


@contextmanager
def evaluation_timed() -> Iterator[None]:
    """Time the block as one evaluation; count it as failed if it raises."""
    started = time.perf_counter()
    try:
        yield
    except Exception:
        EVALUATIONS_FAILED.inc()
        raise
    finally:
        EVALUATION_SECONDS.observe(time.perf_counter() - started)


class PendingEvaluations:
    """A collector reading the pending evaluations from the database when scraped."""

    def collect(self) -> Iterator[Any]:
        yield GaugeMetricFamily(
            "rlbp_evaluations_pending",
            "Events waiting for an evaluation that failed or was cut off (as /healthz counts them).",
            value=evaluations_pending_count(),
        )


class QueueDepth:
    """A collector reading the task queue's state from the database when scraped."""

    def collect(self) -> Iterator[Any]:
        from rules.jobs import queue_state

        state = queue_state()
        yield GaugeMetricFamily(
            "rlbp_queue_waiting", "Entries of the task queue waiting for a worker.", value=state.waiting
        )
        yield GaugeMetricFamily("rlbp_queue_running", "Entries of the task queue running now.", value=state.running)
        yield GaugeMetricFamily(
            "rlbp_queue_oldest_wait_seconds",
            "How long the oldest entry waiting for a worker has waited (0: none waits).",
            value=state.oldest_wait_seconds,
        )


class _ThisProcess:
    def collect(self) -> Iterator[Any]:
        return REGISTRY.collect()


def metrics_exposition(accept: str) -> tuple[bytes, str]:
    """Every metric, from all processes in multiprocess mode, in the format the scraper asked
    for (``Accept``: Prometheus text by default, or OpenMetrics); (body, content type)."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(PendingEvaluations())
    registry.register(QueueDepth())
    encode, content_type = choose_encoder(accept)
    return encode(registry), content_type
