from django.db import migrations


class Migration(migrations.Migration):
    """What judging keeps of a member holds the decision policy's memory and the figures' state."""

    dependencies = [
        ("coaching", "0012_advice_priority_and_emergency"),
    ]

    operations = [
        migrations.RenameField(model_name="member", old_name="policy_state", new_name="kept_state"),
    ]
