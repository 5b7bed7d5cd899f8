"""The models and their migrations agree (a forgotten migration fails here, not in production)."""

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_no_model_change_lacks_a_migration():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.django_db
def test_an_existing_clinicians_group_gets_the_permissions_of_the_writing_actions():
    import importlib

    from django.apps import apps
    from django.contrib.auth.models import Group

    migration = importlib.import_module("coaching.migrations.0004_permissions_clear_referral_and_reevaluate")
    group = Group.objects.create(name="Clinicians")
    migration.clinicians_get_new_permissions(apps, None)
    migration.clinicians_get_new_permissions(apps, None)  # idempotent
    codenames = set(group.permissions.values_list("content_type__model", "codename"))
    assert codenames == {("member", "clear_referral"), ("event", "reevaluate_event")}
