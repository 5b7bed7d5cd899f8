"""SQLite, with the writers of one process taking turns on a lock instead of in SQLite's busy
handler.

SQLite lets one transaction write at a time. A writer that finds the write lock taken is put
to sleep by SQLite's busy handler in growing steps however soon the lock is freed, and with
several threads of one web process posting events those sleeps make most of a request's
latency. Here the threads of one process wait on
a Python lock and the next one starts the moment the writer before it commits. Writers in
other processes (the queue worker, more web processes) still meet SQLite's busy handler; the
lock only orders what SQLite would serialize anyway.

Used for every SQLite database of the product (``config.settings``); transactions that do
not take the write lock when they begin (``transaction_mode`` other than IMMEDIATE or
EXCLUSIVE) are left as Django runs them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from django.db import OperationalError
from django.db.backends.sqlite3 import base

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class _Turns:
    """The writers' turns on one database file, shared by the connections of all threads of
    this process."""

    def __init__(self, timeout: float) -> None:
        self.lock = threading.Lock()
        self.timeout = timeout

    def take(self) -> None:
        # As long as SQLite itself would wait, then its own "database is locked" error.
        if not self.lock.acquire(timeout=self.timeout):
            raise OperationalError("database is locked")

    @contextmanager
    def turn(self) -> Iterator[None]:
        self.take()
        try:
            yield
        finally:
            self.lock.release()


_turns: dict[str, _Turns] = {}
_turns_guard = threading.Lock()


class DatabaseWrapper(base.DatabaseWrapper):
    _holding: _Turns | None = None

    @property
    def _turns(self) -> _Turns | None:
        """None when transactions do not take the write lock as they begin (left as Django runs them)."""
        if self.transaction_mode not in ("IMMEDIATE", "EXCLUSIVE"):
            return None
        with _turns_guard:
            return _turns.setdefault(
                str(self.settings_dict["NAME"]), _Turns(float(self.settings_dict["OPTIONS"].get("timeout", 5)))
            )

    def _turn_end(self) -> None:
        turns, self._holding = self._holding, None
        if turns is not None:
            turns.lock.release()

    def _start_transaction_under_autocommit(self) -> None:
        turns = self._turns
        if turns is None:
            return super()._start_transaction_under_autocommit()
        turns.take()
        self._holding = turns
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
        turns = self._turns
        if turns is None:
            return super().create_cursor(name)
        return self.connection.cursor(factory=lambda connection: TurnTakingCursor(connection, turns))


class TurnTakingCursor(base.SQLiteCursorWrapper):
    """A write outside a transaction (autocommit: one statement) takes its turn too."""

    def __init__(self, connection, turns: _Turns) -> None:
        super().__init__(connection)
        self._turns = turns

    def _turn(self, query: str) -> AbstractContextManager[None]:
        alone = not self.connection.in_transaction and query.lstrip()[:7].upper().startswith(WRITES)
        return self._turns.turn() if alone else nullcontext()

    def execute(self, query, params=None):
        with self._turn(query):
            return super().execute(query, params)

    def executemany(self, query, param_list):
        with self._turn(query):
            return super().executemany(query, param_list)
