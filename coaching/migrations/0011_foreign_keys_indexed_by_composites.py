"""The foreign keys of events and advice to their gym and member lose their own index: every
one of them is the first column of a composite index too (``event_member_time``,
``event_gym_time``, ``advice_cooldown``, ``advice_gym_feed``, ...), which serves the same
lookups, and each index is one more write per stored event and advice.

Dropped by name (Django's names for them), not by ``AlterField``: on SQLite that rebuilt the
two largest tables twice each, and on PostgreSQL it dropped and validated the foreign keys
again over every row.
"""

import django.db.models.deletion
from django.db import migrations, models

INDEXES = [
    ("coaching_advice_gym_id_35a71ad9", "coaching_advice", "gym_id"),
    ("coaching_advice_member_id_e8778d9a", "coaching_advice", "member_id"),
    ("coaching_event_gym_id_a5c63729", "coaching_event", "gym_id"),
    ("coaching_event_member_id_3f74790d", "coaching_event", "member_id"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("coaching", "0010_member_read_from"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    sql=f'DROP INDEX IF EXISTS "{name}"',
                    reverse_sql=f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ("{column}")',
                )
                for name, table, column in INDEXES
            ],
            state_operations=[
                migrations.AlterField(
                    model_name=model,
                    name=name,
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name=related,
                        to=f"coaching.{name}",
                    ),
                )
                for model, related in (("advice", "advice"), ("event", "events"))
                for name in ("gym", "member")
            ],
        ),
    ]
