"""Telling a database that cannot take writes right now from a bug, and checking it can.

A busy or locked SQLite file, a PostgreSQL lock or statement timeout, a lost connection and a
read-only database (a SQLite file opened read-only, ``PRAGMA query_only``, a PostgreSQL standby or
``default_transaction_read_only``) all pass: the same request succeeds once the database is back,
and events are idempotent, so the API answers 503 with ``Retry-After`` rather than 500.
"""

from __future__ import annotations

from django.db import DatabaseError, OperationalError, transaction
from django.db.models import F

from coaching.models import Gym

# SQLSTATE of PostgreSQL's "cannot execute INSERT in a read-only transaction"; psycopg raises it as an
# InternalError, not an OperationalError, so it needs naming.
READ_ONLY_SQLSTATE = "25006"

OK = "ok"
READ_ONLY = "read-only"
UNAVAILABLE = "error"


def database_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says the database cannot take the request now, not that the request is wrong."""
    return isinstance(exc, OperationalError) or _read_only(exc)


def _read_only(exc: BaseException) -> bool:
    if not isinstance(exc, DatabaseError):
        return False
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) == READ_ONLY_SQLSTATE:
        return True
    return "readonly database" in str(exc) or "read-only transaction" in str(exc)


def database_write_status() -> str:
    """``ok`` when the database takes a write now; ``read-only``, or ``error`` when it does not answer.

    The write changes no row (its filter matches none) and is rolled back all the same, so it is
    cheap and leaves nothing behind; both SQLite and PostgreSQL still refuse it when read-only.
    """
    try:
        with transaction.atomic():
            Gym.objects.filter(pk=-1).update(name=F("name"))
            transaction.set_rollback(True)
    except DatabaseError as exc:
        return READ_ONLY if _read_only(exc) else UNAVAILABLE
    return OK
