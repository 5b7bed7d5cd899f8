"""SQLite, with the writers of one process taking turns on a lock instead of in SQLite's busy
handler.

SQLite lets one transaction write at a time. A writer that finds the write lock taken is put
to sleep by SQLite's busy handler in growing steps (1, 2, 5, 10, ... 100 ms) however soon the
lock is freed: with 8 threads of one web process posting events, most of a request's latency
was these sleeps (p99 340 ms for requests of 5 ms). Here the threads of one process wait on
a Python lock and the next one starts the moment the writer before it commits. Writers in
other processes (the queue worker, more web processes) still meet SQLite's busy handler, as
before; the lock only orders what SQLite would serialize anyway.

Used for every SQLite database of the product (``config.settings``); transactions that do
not take the write lock when they begin (``transaction_mode`` other than IMMEDIATE or
EXCLUSIVE) are left as Django runs them.
"""

from __future__ import annotations

import threading

from django.db import OperationalError
from django.db.backends.sqlite3 import base

# One lock per database file, shared by the connections of all threads of this process.
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def _writer_lock(name: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(name, threading.Lock())


class DatabaseWrapper(base.DatabaseWrapper):
    _holding: threading.Lock | None = None

    def _writers_take_turns(self) -> bool:
        return self.transaction_mode in ("IMMEDIATE", "EXCLUSIVE")

    def _turn_take(self) -> None:
        lock = _writer_lock(str(self.settings_dict["NAME"]))
        # As long as SQLite itself would wait, then its own "database is locked" error.
        if not lock.acquire(timeout=float(self.settings_dict["OPTIONS"].get("timeout", 5))):
            raise OperationalError("database is locked")
        self._holding = lock

    def _turn_end(self) -> None:
        lock, self._holding = self._holding, None
        if lock is not None:
            lock.release()

    def _start_transaction_under_autocommit(self) -> None:
        if not self._writers_take_turns():
            return super()._start_transaction_under_autocommit()
        self._turn_take()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._turn_end()
            raise

    def _commit(self) -> None:
        try:
            super()._commit()
        finally:
            self._turn_end()

    def _rollback(self) -> None:
        try:
            super()._rollback()
        finally:
            self._turn_end()

    def _close(self) -> None:
        try:
            super()._close()
        finally:
            self._turn_end()

    def create_cursor(self, name: str | None = None) -> base.SQLiteCursorWrapper:
        if not self._writers_take_turns():
            return super().create_cursor(name)
        lock = _writer_lock(str(self.settings_dict["NAME"]))
        timeout = float(self.settings_dict["OPTIONS"].get("timeout", 5))
        return self.connection.cursor(factory=lambda connection: TurnTakingCursor(connection, lock, timeout))


class TurnTakingCursor(base.SQLiteCursorWrapper):
    """A write outside a transaction (autocommit: one statement) takes its turn too."""

    def __init__(self, connection, lock: threading.Lock, timeout: float) -> None:
        super().__init__(connection)
        self._lock, self._timeout = lock, timeout

    def _alone(self, query: str) -> bool:
        return not self.connection.in_transaction and query.lstrip()[:7].upper().startswith(WRITES)

    def execute(self, query, params=None):
        if not self._alone(query):
            return super().execute(query, params)
        if not self._lock.acquire(timeout=self._timeout):
            raise base.Database.OperationalError("database is locked")
        try:
            return super().execute(query, params)
        finally:
            self._lock.release()

    def executemany(self, query, param_list):
        if not self._alone(query):
            return super().executemany(query, param_list)
        if not self._lock.acquire(timeout=self._timeout):
            raise base.Database.OperationalError("database is locked")
        try:
            return super().executemany(query, param_list)
        finally:
            self._lock.release()
