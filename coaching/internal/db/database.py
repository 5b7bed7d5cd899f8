"""Telling a database that cannot take writes right now from a bug, saying which, and checking it.

A database that cannot take a request now is one of three things, each told apart here
(``database_problem``) because each asks something else of the client:

- **read-only**: a SQLite file that cannot be written (its mode, an immutable file, a read-only
  disk), ``PRAGMA query_only``, a PostgreSQL standby or ``default_transaction_read_only``; it
  lasts until an operator acts (maintenance, a fail-over).
- **unreachable**: no connection (refused, lost, the server shutting down, a SQLite file that
  cannot be opened).
- **busy**: a lock or a timeout (SQLite's lock held by other writers for too long, a PostgreSQL
  lock, statement timeout, deadlock or too many connections); the next try usually passes.

All of them pass: the same request succeeds once the database is back, and events are
idempotent, so the API answers 503 in words that name the cause, with a ``Retry-After`` that
fits it, rather than 500.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.db import DatabaseError, OperationalError, connection, transaction
from django.db.models import F

from coaching.models import Gym

# SQLSTATE of PostgreSQL's "cannot execute INSERT in a read-only transaction"; psycopg raises it as an
# InternalError, not an OperationalError, so it needs naming.
READ_ONLY_SQLSTATE = "25006"

# SQLSTATEs of PostgreSQL that mean "busy": lock not available, query canceled (a statement or lock
# timeout), serialization failure, deadlock, too many connections.
BUSY_SQLSTATES = {"55P03", "57014", "40001", "40P01", "53300"}
BUSY_SQLITE = ("database is locked", "database table is locked")

OK = "ok"
READ_ONLY = "read-only"
UNREACHABLE = "unreachable"
BUSY = "busy"
UNAVAILABLE = "error"  # /healthz's word for a database that is unreachable or stays busy

# What the API's 503 and /healthz say for each (docs/api.md), and when to try again (seconds):
# a read-only database waits for an operator, an unreachable one for a restart or a fail-over.
DATABASE_READ_ONLY = (
    "The database is read-only at the moment (maintenance or a fail-over), so nothing can be stored; "
    "send the same request again later."
)
DATABASE_UNREACHABLE = "The database is unreachable at the moment; send the same request again in a little while."
DATABASE_BUSY = "The database is busy with other requests; send the same request again in a moment."
PROBLEM_WORDS = {READ_ONLY: DATABASE_READ_ONLY, UNREACHABLE: DATABASE_UNREACHABLE, BUSY: DATABASE_BUSY}
RETRY_AFTER = {READ_ONLY: 30, UNREACHABLE: 10, BUSY: 1}


def database_problem(exc: BaseException) -> str | None:
    """``READ_ONLY``, ``UNREACHABLE`` or ``BUSY`` when ``exc`` says the database cannot take the
    request now; None when it says something else (a bug, a request the database refuses)."""
    if _read_only(exc):
        return READ_ONLY
    if not isinstance(exc, OperationalError):
        return None
    if getattr(exc.__cause__, "sqlstate", None) in BUSY_SQLSTATES or any(text in str(exc) for text in BUSY_SQLITE):
        return BUSY
    return UNREACHABLE


def database_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says the database cannot take the request now, not that the request is wrong."""
    return database_problem(exc) is not None


def _read_only(exc: BaseException) -> bool:
    if not isinstance(exc, DatabaseError):
        return False
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) == READ_ONLY_SQLSTATE:
        return True
    return "readonly database" in str(exc) or "read-only transaction" in str(exc)


def database_write_status() -> str:
    """``OK`` when the database takes a write now; else ``READ_ONLY``, ``UNREACHABLE`` or ``BUSY``.

    The write changes no row (its filter matches none) and is rolled back all the same, so it is
    cheap and leaves nothing behind; both SQLite and PostgreSQL still refuse it when read-only.
    A SQLite file is also asked whether it can be written: a connection opened before the file
    became read-only writes into the WAL file until it must write to the database itself.
    """
    try:
        with transaction.atomic():
            Gym.objects.filter(pk=-1).update(name=F("name"))
            transaction.set_rollback(True)
    except DatabaseError as exc:
        return database_problem(exc) or UNREACHABLE
    if _sqlite_file_read_only():
        return READ_ONLY
    return OK


def _sqlite_file_read_only() -> bool:
    if connection.vendor != "sqlite":
        return False
    name = str(connection.settings_dict["NAME"])
    if name.startswith("file:") or name == ":memory:":  # in memory (the tests' databases)
        return False
    files = [Path(name), Path(f"{name}-wal"), Path(f"{name}-shm")]
    return any(path.exists() and not os.access(path, os.W_OK) for path in files)
