"""Tuning of the garbage collector for the long-running processes (web, queue workers, imports).

Once Django and the apps are loaded, what is loaded lives as long as the process: frozen, the
cyclic collector no longer walks it at every full collection. And a request or a job makes
many short-lived objects (an array of 500 events: rows, events, facts, advice), which reference
counting frees; the cyclic collector, run every 700 allocations by default, walked them all the
same. Measured on arrays of 500 events: collections took a sixth of the time at the defaults, a
twentieth frozen, and under a twentieth of that frozen with the first generation collected
every 50,000 allocations (the servers' memory over 100,000 events: ``python -m bench.api
--full``). That leaves the cycles a request makes for later: a large request's are collected
as soon as it is answered (``collect_after_request``).
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
    """Call when a request comes in. A large one runs without the cyclic collector, which
    ``collect_after_request`` runs in full once it is answered anyway: the young-generation
    collections in the middle of an array of 500 events took 6 ms of it."""
    if content_length >= LARGE_REQUEST_BYTES:
        gc.disable()


def collect_after_request(content_length: int) -> None:
    """Call once a request is answered. Django's and DRF's request, view and response refer to
    each other, and with them the parsed body and the answer: after a large request that is
    megabytes only the cyclic collector frees, which at the raised threshold comes late (a web
    process grew by 77 MB over 100,000 events, 31 MB with this). A full collection takes about
    9 ms after an array of 500 events, while the client reads its answer."""
    if content_length >= LARGE_REQUEST_BYTES:
        gc.collect()
    gc.enable()
