from django.db import migrations, models

ORIGIN_CHOICES = [
    ("edit", "hand edit"),
    ("rollback", "roll back"),
    ("import", "pack import"),
    ("install", "pack install"),
    ("upgrade", "pack upgrade"),
    ("discard", "draft discarded"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("rules", "0002_policy_and_settings"),
    ]

    operations = [
        # Changes recorded before origins were kept get a blank origin (shown as unknown), not
        # "hand edit": some of them were roll backs or imports.
        migrations.AddField(
            model_name="rulechange",
            name="origin",
            field=models.CharField(choices=ORIGIN_CHOICES, default="", max_length=20),
            preserve_default=False,
        ),
        migrations.AlterField(
            model_name="rulechange",
            name="origin",
            field=models.CharField(choices=ORIGIN_CHOICES, default="edit", max_length=20),
        ),
        migrations.AddField(
            model_name="rulechange",
            name="origin_version",
            field=models.PositiveIntegerField(
                blank=True, help_text="The version a roll back or a discard brought the draft back to.", null=True
            ),
        ),
        migrations.AlterField(
            model_name="rulechange",
            name="rule_key",
            field=models.CharField(blank=True, db_index=True, max_length=80),
        ),
    ]
