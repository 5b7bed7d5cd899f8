"""Request limits per gym (rate from ``REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']['gym']``).

Counted in a shared store, so every process and host counts against the same limit: a fixed
window (a minute for ``6000/minute``) has one counter, raised atomically: by one upsert
statement in the database (``RateCounter``; one query, no transaction), or with Redis's
INCRBY when ``CACHE_URL`` names a Redis. DRF's ``SimpleRateThrottle`` keeps a list of timestamps that it reads and
writes back, so two processes at once lose one of the requests; a counter cannot.

Fixed windows start on the clock (every minute at :00), which is what lets every process
agree on them and tell the client when the window resets; a client can send up to twice the
limit across a window boundary, which a limit meant to stop runaway clients allows for.
The state of the window is kept on the request for ``rate_limit_headers``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from ..models import Gym, RateCounter

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class RateLimit:
    limit: int
    remaining: int
    reset: int  # seconds until the window ends
    window: int  # seconds


logger = logging.getLogger(__name__)


def rate_parse(rate: str) -> tuple[int, int]:
    """``"6000/minute"`` -> (6000, 60): DRF's format, a number and s/m/h/d (or a word starting so)."""
    number, period = rate.split("/")
    return int(number), PERIODS[period.strip()[0]]


def counter_hit(key: str, window: int) -> int | None:
    """Count one request under ``key`` (which names the window); the count so far, or None when
    the shared store takes no writes (a read-only or unreachable database, Redis down)."""
    if not settings.CACHE_URL:
        try:
            return counter_upsert(key, window)
        except DatabaseError:
            logger.warning("rate limit not counted: the database takes no writes (%s)", key)
            return None
    for _ in range(3):
        try:
            return cache.incr(key)
        except ValueError:  # the window's first request (or its key just expired)
            if cache.add(key, 1, timeout=window + 1):
                return 1
        except DatabaseError:
            break
    # The database cache swallows write errors (add answers False): not countable now. The
    # limit fails open; the request itself meets the database's state (503 when unwritable).
    logger.warning("rate limit not counted: the cache takes no writes (%s)", key)
    return None


def counter_upsert(key: str, window: int) -> int:
    """One statement, atomic on SQLite and PostgreSQL alike: insert the window's counter at 1, or
    add 1 to it, and read the count (no read-then-write to lose an update, no transaction)."""
    q = connection.ops.quote_name
    table, key_, count, expires_at = q(RateCounter._meta.db_table), q("key"), q("count"), q("expires_at")
    expires = timezone.now() + timedelta(seconds=window + 1)
    # Inside a transaction (a test's, or a caller's) a failing statement must not abort it on
    # PostgreSQL: a savepoint then. A request is not in one, and stays at one statement.
    guard = transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()
    with guard, connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({key_}, {count}, {expires_at}) VALUES (%s, 1, %s) "  # noqa: S608 (quoted names)
            f"ON CONFLICT ({key_}) DO UPDATE SET {count} = {table}.{count} + 1 RETURNING {count}",
            [key, expires],
        )
        return cursor.fetchone()[0]


class GymRateThrottle(BaseThrottle):
    scope = "gym"
    timer = staticmethod(time.time)

    def get_rate(self) -> str | None:
        # Read at request time, not import time, so a changed setting takes effect.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request: Request, view: Any) -> bool:
        rate = self.get_rate()
        if not rate or not isinstance(request.auth, Gym):
            return True
        limit, window = rate_parse(rate)
        now = self.timer()
        start = int(now // window) * window
        count = counter_hit(f"throttle:{self.scope}:{request.auth.pk}:{window}:{start}", window)
        if count is None:
            return True
        self.state = RateLimit(
            limit=limit, remaining=max(limit - count, 0), reset=max(math.ceil(start + window - now), 1), window=window
        )
        request.rate_limit = self.state
        return count <= limit

    def wait(self) -> float | None:
        state = getattr(self, "state", None)
        return state.reset if state is not None else None


def rate_limit_headers(request: Request) -> dict[str, str]:
    """The IETF draft's RateLimit header fields for the answer, when the request was counted."""
    state: RateLimit | None = getattr(request, "rate_limit", None)
    if state is None:
        return {}
    return {
        "RateLimit-Limit": str(state.limit),
        "RateLimit-Remaining": str(state.remaining),
        "RateLimit-Reset": str(state.reset),
        "RateLimit-Policy": f"{state.limit};w={state.window}",
    }
