"""Tuning of the garbage collector for the long-running processes (web, queue workers, imports).

Once Django and the apps are loaded, what is loaded lives as long as the process, so it is
frozen: the cyclic collector no longer walks it at every full collection. A request or a job
makes many short-lived objects (an array of events: rows, events, facts, advice) that reference
counting frees, so the first generation is collected far less often than every 700 allocations,
the default, which walked them all the same (``python -m bench.api --full`` measures it). That
leaves the cycles a request makes for later: a large request's are collected as soon as it is
answered (``collect_after_request``).
"""

from __future__ import annotations

import gc

FIRST_GENERATION_THRESHOLD = 50_000
# A request at least this large (an array of about 200 events) is followed by a full collection.
LARGE_REQUEST_BYTES = 64 * 1024


def collector_tune() -> None:
    """Call once the process has loaded what it needs (after Django's set-up)."""
    gc.collect()
    gc.freeze()
    _first, second, third = gc.get_threshold()
    gc.set_threshold(FIRST_GENERATION_THRESHOLD, second, third)


def pause_for_request(content_length: int) -> None:
    """Call when a request comes in. A large one runs without the cyclic collector, since
    ``collect_after_request`` runs it in full once the request is answered anyway and, in the
    middle of it, it would walk objects the request still holds."""
    if content_length >= LARGE_REQUEST_BYTES:
        gc.disable()


def collect_after_request(content_length: int) -> None:
    """Call once a request is answered. Django's and DRF's request, view and response refer to
    each other, and with them the parsed body and the answer: after a large request that is
    megabytes only the cyclic collector frees, and at the raised threshold it would come late
    and the process would grow; collected now, while the client reads its answer, it costs the
    client nothing."""
    if content_length >= LARGE_REQUEST_BYTES:
        gc.collect()
    gc.enable()
