"""Queries of the API's hot path, compiled once per shape and run many times.

Building and compiling a queryset costs Django more than the database takes to run the hot
path's small queries. A ``Prepared`` query is written as an
ordinary queryset, compiled once for each shape of its parameters (the lengths of its lists)
with stand-in values in their places, and then run with the real values; its rows come back
through the converters Django itself applies (JSON, aware datetimes, booleans), when and for
the columns the caller asks; JSON by ``coaching.internal.db.jsontext`` (the same values, faster). On
PostgreSQL a shape that has run a few times is also prepared on the server, once per
connection (``_server_prepared``): planning it took longer than running it.
"""

from __future__ import annotations

import functools
import hashlib
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.models import JSONField, QuerySet
from django.db.models.sql.compiler import SQLCompiler

from .jsontext import json_field_loader

MAX_SHAPES = 64  # compiled shapes kept per query (least recently used dropped)


@dataclass
class _Compiled:
    sql: str
    # Per SQL parameter: (name, None) a single parameter, (name, index) an item of a list, or
    # (None, value) a constant of the query itself.
    slots: tuple[tuple[str | None, Any], ...]
    compiler: SQLCompiler
    converters: dict[int, Any]  # by column position, as SQLCompiler.get_converters gives them
    runs: int = 0  # in this process
    preparable: bool = True  # False: PostgreSQL refused to prepare it

    @functools.cached_property
    def name(self) -> str:
        """Its name as a prepared statement: from its text, so that one name is always one query,
        in every process (a pooler may share a server connection between processes)."""
        return "rlbp_" + hashlib.sha256(self.sql.encode()).hexdigest()[:32]

    @property
    def prepare_sql(self) -> str:
        """PREPARE of the statement, its parameters numbered as PostgreSQL numbers them."""
        numbered = iter(range(1, len(self.slots) + 1))
        parts = [re.sub("%s", lambda _match: f"${next(numbered)}", part) for part in self.sql.split("%%")]
        return f"PREPARE {self.name} AS " + "%".join(parts)

    @property
    def execute_sql(self) -> str:
        return f"EXECUTE {self.name}({', '.join(['%s'] * len(self.slots))})" if self.slots else f"EXECUTE {self.name}"


# PostgreSQL: a statement run this often in this process is prepared on each connection that
# runs it (see ``_server_prepared``).
PREPARE_AFTER_RUNS = 3
# The statements each database connection holds (they end with it).
_statements: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
_statements_lock = threading.Lock()


class Prepared:
    """``build(**params)`` returns the queryset (a ``values_list``); ``lists`` names its
    parameters that are collections (of distinct ints or strings), the others are single
    ints or strings."""

    def __init__(self, build: Callable[..., QuerySet], *, lists: Collection[str] = ()) -> None:
        self._build = build
        self._lists = tuple(lists)
        self._shapes: OrderedDict[tuple, _Compiled] = OrderedDict()
        self._lock = threading.Lock()

    def fetch(self, *, using: str = DEFAULT_DB_ALIAS, **params: Any) -> tuple[list[tuple], _Compiled]:
        """The rows as the database returns them, with what ``converted`` needs."""
        params = {name: list(dict.fromkeys(value)) if name in self._lists else value for name, value in params.items()}
        shape = (using, *(len(params[name]) for name in self._lists))
        compiled = self._compiled(shape, using, params)
        values = [
            constant if name is None else params[name] if constant is None else params[name][constant]
            for name, constant in compiled.slots
        ]
        connection = connections[using]
        compiled.runs += 1
        with connection.cursor() as cursor:
            if _server_prepared(connection, cursor, compiled):
                try:
                    cursor.execute(compiled.execute_sql, values)
                    return cursor.fetchall(), compiled
                except DatabaseError:  # the statement is gone (a pooler between us and the server?)
                    compiled.preparable = False  # in this process, from now on: run as it is
            cursor.execute(compiled.sql, values)
            return cursor.fetchall(), compiled

    @staticmethod
    def converted(rows: Iterable[Sequence[Any]], compiled: _Compiled, columns: Iterable[int]) -> list[list[Any]]:
        """``rows`` with the ``columns`` (positions) turned into Python values as Django would."""
        wanted = set(columns)
        converters = {position: value for position, value in compiled.converters.items() if position in wanted}
        if not converters:
            return [list(row) for row in rows]
        return list(compiled.compiler.apply_converters(rows, converters))

    def _compiled(self, shape: tuple, using: str, params: dict[str, Any]) -> _Compiled:
        with self._lock:
            compiled = self._shapes.get(shape)
            if compiled is not None:
                self._shapes.move_to_end(shape)
                return compiled
        compiled = self._compile(using, params)
        with self._lock:
            self._shapes[shape] = compiled
            while len(self._shapes) > MAX_SHAPES:
                self._shapes.popitem(last=False)
        return compiled

    def _compile(self, using: str, params: dict[str, Any]) -> _Compiled:
        stand_ins: dict[Any, tuple[str, int | None]] = {}

        def stand_in(name: str, index: int | None, like: Any) -> Any:
            # A value no real parameter takes: a negative int, or a string with a NUL (which
            # no stored id or key holds: the API refuses them).
            number = len(stand_ins) + 1
            value = -(10**15) - number if isinstance(like, int) else f"\x00{name}:{number}"
            stand_ins[value] = (name, index)
            return value

        fake = {}
        for name, value in params.items():
            if name in self._lists:
                fake[name] = [stand_in(name, index, item) for index, item in enumerate(value)]
            else:
                fake[name] = stand_in(name, None, value)
        compiler = self._build(**fake).query.get_compiler(using=using)
        sql, sql_params = compiler.as_sql()
        slots = []
        for param in sql_params:
            slot = stand_ins.get(param) if isinstance(param, int | str) and not isinstance(param, bool) else None
            slots.append(slot if slot is not None else (None, param))
        unused = set(stand_ins.values()) - set(slots)
        if unused:  # a parameter was written into the SQL text or dropped: it could not be replaced
            raise ValueError(f"Prepared query: parameters {sorted({name for name, _i in unused})} not in its SQL")
        fields = [column[0] for column in compiler.select[0 : compiler.col_count]]
        converters = {
            position: ([_faster(function) for function in functions], expression)
            for position, (functions, expression) in compiler.get_converters(fields).items()
        }
        return _Compiled(sql=sql, slots=tuple(slots), compiler=compiler, converters=converters)


def _server_prepared(connection: Any, cursor: Any, compiled: _Compiled) -> bool:
    """Whether ``compiled`` is (now) a prepared statement of the connection, to be run by name.

    PostgreSQL plans the ingest's read for longer than it takes to run it, and a prepared
    statement is planned once per connection. Only outside a transaction, so that a refusal
    (or a statement gone, behind a pooler that shares server connections) costs nothing but
    the statement itself, which then runs as it is; Django's persistent connections keep the
    statements for up to ``CONN_MAX_AGE``."""
    if (
        connection.vendor != "postgresql"
        or connection.in_atomic_block
        or not compiled.preparable
        or compiled.runs < PREPARE_AFTER_RUNS
    ):
        return False
    with _statements_lock:
        known = _statements.setdefault(connection.connection, set())
        if compiled.name in known:
            return True
    try:
        cursor.execute(compiled.prepare_sql)
    except DatabaseError:  # PostgreSQL could not tell a parameter's type, say: run it as it is
        compiled.preparable = False
        return False
    with _statements_lock:
        known.add(compiled.name)
    return True


def _faster(converter: Callable) -> Callable:
    """A JSONField's ``from_db_value`` by orjson where it reads the same values (``jsontext``)."""
    owner = getattr(converter, "__self__", None)
    if owner is None or getattr(converter, "__func__", None) is not JSONField.from_db_value:
        return converter
    return json_field_loader(owner) or converter
