"""On PostgreSQL the rate-limit counters are an UNLOGGED table: a counter is raised by every
API request in a transaction of its own, and a commit that wrote to a logged table waits for
its WAL record to reach the disk; an unlogged table's writes skip the WAL. What is given up is
nothing a rate limit needs: after a crash of PostgreSQL the table starts empty, and standbys
do not have it (counts start again after a failover)."""

from django.db import migrations


def _set(logged: bool):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        table = schema_editor.quote_name(apps.get_model("coaching", "RateCounter")._meta.db_table)
        schema_editor.execute(f"ALTER TABLE {table} SET {'LOGGED' if logged else 'UNLOGGED'}")

    return apply


class Migration(migrations.Migration):
    dependencies = [("coaching", "0008_event_import")]

    operations = [migrations.RunPython(_set(logged=False), _set(logged=True), elidable=False)]
