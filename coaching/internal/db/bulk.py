"""Many new rows of one model in one statement: what ``bulk_create`` runs, without its machinery.

Django's ``bulk_create`` spends longer in Python than the database takes to insert an array's
events and advice, resolving and compiling every value through the insert compiler. Here each
column's values go through the field's own ``get_db_prep_save`` (so they are exactly what
Django would send), except plain strings, integers, booleans and None for the plain field
classes, which that leaves as they are; the rows' primary keys come back with RETURNING.

On PostgreSQL Django 5.2 sends the rows as one array per column (UNNEST); psycopg escapes the
quotes inside every JSON value of such an array with a regular-expression substitution that
runs Python code per quote character. A
multi-row VALUES list sends each value on its own, quoted by libpq; on PostgreSQL the rows go
as one JSON document (written by ``coaching.internal.db.jsontext``) that the server turns into rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connections, models, router

from .jsontext import json_text

RECORDSET_ROWS = 5_000  # rows per statement on PostgreSQL
# Internal types whose prepared values JSON carries as they are.
_JSON_NATIVE = {
    "AutoField",
    "BigAutoField",
    "BigIntegerField",
    "BooleanField",
    "CharField",
    "IntegerField",
    "PositiveBigIntegerField",
    "PositiveIntegerField",
    "PositiveSmallIntegerField",
    "SmallIntegerField",
    "TextField",
}
# Field classes whose get_db_prep_save returns a value of these types unchanged.
_PLAIN = {
    models.CharField: (str,),
    models.TextField: (str,),
    models.BooleanField: (bool,),
    models.IntegerField: (int,),
    models.PositiveIntegerField: (int,),
    models.PositiveSmallIntegerField: (int,),
    models.SmallIntegerField: (int,),
    models.BigIntegerField: (int,),
    models.ForeignKey: (int,),
}


def objects_insert(objs: Sequence[models.Model]) -> None:
    """Insert ``objs`` (new instances of one model, primary keys unset) and set their primary
    keys, as ``Model.objects.bulk_create(objs)`` does; it is what runs where this cannot (a
    database without RETURNING, a field with a placeholder of its own, a primary key given)."""
    if not objs:
        return
    model = type(objs[0])
    meta = model._meta
    using = router.db_for_write(model)
    connection = connections[using]
    fields = [field for field in meta.concrete_fields if field is not meta.pk]
    if (
        not connection.features.can_return_rows_from_bulk_insert
        or any(hasattr(field, "get_placeholder") for field in fields)
        or any(obj.pk is not None or type(obj) is not model for obj in objs)
    ):
        model._default_manager.using(using).bulk_create(objs)
        return
    relations = [field for field in fields if field.many_to_one]
    for obj in objs:
        for field in relations:
            _related_key(obj, field)
    if connection.vendor == "postgresql":
        json_values = [_json_preparer(field) for field in fields]
        if all(json_values):
            _recordset_insert(connection, using, objs, fields, json_values)
            return
    prepare = [_preparer(field, connection) for field in fields]
    rows = [[value(obj) for value in prepare] for obj in objs]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    head = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES "  # noqa: S608 (names from the model)
    tail = f" RETURNING {quote(meta.pk.column)}"
    row_placeholder = "({})".format(", ".join(["%s"] * len(fields)))
    size = max(1, connection.ops.bulk_batch_size(fields, objs))
    with connection.cursor() as cursor:
        for start in range(0, len(rows), size):
            batch = rows[start : start + size]
            cursor.execute(
                head + ", ".join([row_placeholder] * len(batch)) + tail, [value for row in batch for value in row]
            )
            _keys_set(objs[start : start + size], cursor.fetchall(), using)


def _keys_set(objs: Sequence[models.Model], rows: Sequence[tuple], using: str) -> None:
    for obj, (pk,) in zip(objs, rows, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = using


def _recordset_insert(
    connection: Any, using: str, objs: Sequence[models.Model], fields: list[models.Field], json_values: list
) -> None:
    """PostgreSQL: the rows as one JSON document, made into rows of the table by the server."""
    meta = type(objs[0])._meta
    quote = connection.ops.quote_name
    table, columns = quote(meta.db_table), ", ".join(quote(field.column) for field in fields)
    names = [field.column for field in fields]
    # The rows come back in the order given (WITH ORDINALITY), each with its new key.
    sql = (
        f"INSERT INTO {table} ({columns}) SELECT {columns} "  # noqa: S608 (names from the model)
        f"FROM jsonb_populate_recordset(NULL::{table}, %s::jsonb) WITH ORDINALITY AS r "
        f"ORDER BY r.ordinality RETURNING {quote(meta.pk.column)}"
    )
    with connection.cursor() as cursor:
        for start in range(0, len(objs), RECORDSET_ROWS):
            batch = objs[start : start + RECORDSET_ROWS]
            document = json_text(
                [dict(zip(names, [value(obj) for value in json_values], strict=True)) for obj in batch]
            )
            cursor.execute(sql, [document])
            _keys_set(batch, cursor.fetchall(), using)


def _json_preparer(field: models.Field) -> Callable[[models.Model], Any] | None:
    """The function giving ``field``'s value of an instance about to be inserted as the JSON
    document of ``_recordset_insert`` carries it (None: a field it cannot carry)."""
    convert = _json_converter(field)
    return _of_instance(field, convert) if convert is not None else None


def _json_converter(field: models.Field) -> Callable[[Any], Any] | None:
    """The function making a value of ``field`` what a JSON document carries for it (None: a
    field it cannot carry)."""
    kind = field.get_internal_type()
    if kind == "JSONField":
        return None if field.encoder is not None else _same  # None is SQL NULL, as Django stores it
    if kind in ("DateTimeField", "DateField"):
        prep = field.get_prep_value  # aware datetimes, as Django would send them

        def moment(value: Any) -> Any:
            value = prep(value)
            return None if value is None else value.isoformat()

        return moment
    if kind in _JSON_NATIVE or (field.many_to_one and field.target_field.get_internal_type() in _JSON_NATIVE):
        return field.get_prep_value
    return None


def _same(value: Any) -> Any:
    return value


def rows_update(
    model: type[models.Model], names: Sequence[str], rows: Sequence[tuple[Any, Any, Sequence[Any]]], *, guard: str
) -> int:
    """Set the fields ``names`` of ``model``'s rows, each given as (primary key, the value its
    field ``guard`` must still have, the values in the order of ``names``); returns how many
    rows were updated (a row whose ``guard`` changed meanwhile is not).

    One statement run for every row (``executemany``); on PostgreSQL one statement for all of
    them (its executemany is one statement per row too, in pipeline mode)."""
    if not rows:
        return 0
    meta = model._meta
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    fields = [meta.get_field(name) for name in names]
    guard_field = meta.get_field(guard)
    table = quote(meta.db_table)
    converters = [_json_converter(field) for field in fields]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and len(rows) > 1 and all(converters):
            key, expected = quote("__key"), quote("__guard")
            columns = [f"{key} {meta.pk.rel_db_type(connection)}", f"{expected} {guard_field.db_type(connection)}"]
            columns += [f"{quote(field.column)} {field.db_type(connection)}" for field in fields]
            sql = "UPDATE {table} SET {sets} FROM jsonb_to_recordset(%s::jsonb) AS r({columns}) WHERE {table}.{pk} = r.{key} AND {table}.{guard} = r.{expected}".format(  # noqa: E501, S608 (names from the model)
                table=table,
                sets=", ".join(f"{quote(field.column)} = r.{quote(field.column)}" for field in fields),
                columns=", ".join(columns),
                pk=quote(meta.pk.column),
                key=key,
                guard=quote(guard_field.column),
                expected=expected,
            )
            names_json = ["__key", "__guard", *(field.column for field in fields)]
            document = json_text(
                [
                    dict(
                        zip(
                            names_json,
                            [pk, old, *(convert(v) for convert, v in zip(converters, values, strict=True))],
                            strict=True,
                        )
                    )
                    for pk, old, values in rows
                ]
            )
            cursor.execute(sql, [document])
            return cursor.rowcount
        sql = "UPDATE {} SET {} WHERE {} = %s AND {} = %s".format(  # noqa: S608 (names from the model)
            table,
            ", ".join(f"{quote(field.column)} = %s" for field in fields),
            quote(meta.pk.column),
            quote(guard_field.column),
        )
        params = [
            [field.get_db_prep_save(value, connection) for field, value in zip(fields, values, strict=True)] + [pk, old]
            for pk, old, values in rows
        ]
        if len(params) == 1:  # psycopg runs executemany in pipeline mode: more round trips for one
            cursor.execute(sql, params[0])
        else:
            cursor.executemany(sql, params)
        return cursor.rowcount


def _related_key(obj: models.Model, field: models.ForeignKey) -> None:
    """As ``bulk_create`` does: a related object saved after it was set gives its key now, and
    one never saved refuses the insert (the row would lose it)."""
    if getattr(obj, field.attname) is not None or not field.is_cached(obj):
        return
    related = field.get_cached_value(obj)
    if related is None:
        return
    if related.pk is None:
        raise ValueError(
            f"objects_insert() prohibited to prevent data loss due to unsaved related object '{field.name}'"
        )
    setattr(obj, field.name, related)  # sets the key and keeps the object cached


def _preparer(field: models.Field, connection: Any) -> Callable[[models.Model], Any]:
    """The function giving ``field``'s database value of an instance about to be inserted."""
    return _of_instance(field, _db_value(field, connection))


def _of_instance(field: models.Field, convert: Callable[[Any], Any]) -> Callable[[models.Model], Any]:
    """``convert`` of ``field``'s value of an instance about to be inserted (set now if the field
    sets itself on saving, as auto_now_add does)."""
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return lambda obj: convert(field.pre_save(obj, True))
    attname = field.attname
    return lambda obj: convert(getattr(obj, attname))


def _db_value(field: models.Field, connection: Any) -> Callable[[Any], Any]:
    """``field.get_db_prep_save`` of a value, with its last step taken at once for the values
    where the steps before it change nothing: a plain value of a plain field, an aware moment
    of a DateTimeField (``get_prep_value`` returns it as it is), a dict or list of a
    JSONField (which ``get_db_prep_save`` hands to ``adapt_json_value`` as it is)."""
    prep = field.get_db_prep_save
    plain = _PLAIN.get(type(field))
    if plain is not None:
        return lambda raw: raw if raw is None or type(raw) in plain else prep(raw, connection)
    if type(field) is models.DateTimeField:
        adapt = connection.ops.adapt_datetimefield_value

        def moment(raw: Any) -> Any:
            if type(raw) is datetime and raw.tzinfo is not None and settings.USE_TZ:
                return adapt(raw)
            return prep(raw, connection)

        return moment
    if type(field) is models.JSONField:
        adapt_json, encoder = connection.ops.adapt_json_value, field.encoder
        return lambda raw: adapt_json(raw, encoder) if type(raw) in (dict, list) else prep(raw, connection)
    return lambda raw: prep(raw, connection)
