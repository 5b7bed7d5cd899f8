"""Tuning of the garbage collector for the long-running processes (web, queue workers, imports).

Once Django and the apps are loaded, what is loaded lives as long as the process: frozen, the
cyclic collector no longer walks it at every full collection. And a request or a job makes
many short-lived objects (an array of 500 events: rows, events, facts, advice), which reference
counting frees; the cyclic collector, run every 700 allocations by default, walked them all the
same. Measured on arrays of 500 events: collections took a sixth of the time at the defaults, a
twentieth frozen, and under a twentieth of that frozen with the first generation collected
every 50,000 allocations (the servers' memory over 100,000 events: ``python -m bench.api
--full``).
"""

from __future__ import annotations

import gc

FIRST_GENERATION_THRESHOLD = 50_000


def collector_tune() -> None:
    """Call once the process has loaded what it needs (after Django's set-up)."""
    gc.collect()
    gc.freeze()
    _first, second, third = gc.get_threshold()
    gc.set_threshold(FIRST_GENERATION_THRESHOLD, second, third)
