"""Django's database cache, with an ``incr`` that is atomic across processes and hosts.

Django's own ``incr`` reads the value, adds, and writes it back with the default timeout: two
processes incrementing at once both read 5 and both write 6 (a lost update), and the key's
expiry moves on every increment. Here the read and the write share one transaction that
locks the row first (``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite the settings open
every transaction with ``BEGIN IMMEDIATE``, which takes the database's write lock, and a
deferred one could not lose the update either: its write would fail instead), and only the
value is written, so the expiry stays as ``add`` set it. Throttle counters rely on this.
"""

from __future__ import annotations

import base64
import pickle
from typing import Any

from django.core.cache.backends import db
from django.db import connections, models, router, transaction
from django.utils.timezone import now as tz_now


class DatabaseCache(db.DatabaseCache):
    def incr(self, key: str, delta: int = 1, version: int | None = None) -> Any:
        key = self.make_and_validate_key(key, version=version)
        alias = router.db_for_write(self.cache_model_class)
        connection = connections[alias]
        quote_name = connection.ops.quote_name
        table, cache_key, value_column = quote_name(self._table), quote_name("cache_key"), quote_name("value")
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {value_column}, {quote_name('expires')} FROM {table} WHERE {cache_key} = %s{lock}",  # noqa: S608 (quoted names)
                [key],
            )
            row = cursor.fetchone()
            if row is None or self._expired(connection, row[1]):
                raise ValueError(f"Key '{key}' not found")
            stored = base64.b64decode(connection.ops.process_clob(row[0]).encode())
            value = pickle.loads(stored) + delta  # noqa: S301 (written by this cache, as Django's get does)
            encoded = base64.b64encode(pickle.dumps(value, self.pickle_protocol)).decode("latin1")
            update = f"UPDATE {table} SET {value_column} = %s WHERE {cache_key} = %s"  # noqa: S608 (quoted names)
            cursor.execute(update, [encoded, key])
        return value

    @staticmethod
    def _expired(connection: Any, expires: Any) -> bool:
        expression = models.Expression(output_field=models.DateTimeField())
        for converter in connection.ops.get_db_converters(expression) + expression.get_db_converters(connection):
            expires = converter(expires, expression, connection)
        return expires < tz_now()
