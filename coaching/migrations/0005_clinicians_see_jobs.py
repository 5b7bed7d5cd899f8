from django.db import migrations

# Background jobs (simulations, re-evaluations) are listed in the admin with their progress; an
# existing Clinicians group may view them after the upgrade (a new group gets every rules
# permission from coaching.services.clinicians_group_ensure).


def clinicians_view_jobs(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    group = Group.objects.filter(name="Clinicians").first()
    if group is None:
        return
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    content_type, _ = ContentType.objects.get_or_create(app_label="rules", model="job")
    permission, _ = Permission.objects.get_or_create(
        content_type=content_type, codename="view_job", defaults={"name": "Can view job"}
    )
    group.permissions.add(permission)


class Migration(migrations.Migration):
    dependencies = [
        ("coaching", "0004_permissions_clear_referral_and_reevaluate"),
        ("rules", "0004_jobs"),
    ]

    operations = [migrations.RunPython(clinicians_view_jobs, migrations.RunPython.noop)]
