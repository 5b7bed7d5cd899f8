"""Draft controls: discarding the draft, and a change log that says where each change came from."""

from __future__ import annotations

import html

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from rules import services
from rules.admin.describe import spec_describe
from rules.admin.views import MSG_DISCARDED
from rules.models import Rule, RuleChange, RulesetVersion
from rules.packs import Pack, pack_dumps, pack_export, pack_install
from rules.selectors import rule_spec, ruleset_draft_settings, ruleset_draft_specs
from rules.services import MSG_NOTHING_LIVE, MSG_NOTHING_TO_DISCARD
from rules.spec import spec_normalize
from tests.rules.conftest import cond, make_spec
from tests.rules.editor_data import editor_post

pytestmark = pytest.mark.django_db

LIST = reverse("admin:rules_rule_changelist")
DISCARD = reverse("admin:rules_rule_discard")
CHANGES = reverse("admin:rules_rulechange_changelist")
ROLLBACK = reverse("admin:rules_rule_rollback")
IMPORT = reverse("admin:rules_rule_import")


def text(response) -> str:
    """A page as a clinician reads it (entities decoded)."""
    return html.unescape(response.content.decode())


def threshold_spec(value: float = 30, key: str = "hot") -> dict:
    return make_spec(
        key,
        conditions=[cond("temperature", "gt", parameter="limit")],
        parameters=[{"name": "limit", "label": "Limit", "kind": "number", "value": value, "unit": "°C"}],
        message="Temperature {temperature} over {limit}",
    )


def cold_spec() -> dict:
    return make_spec("cold", conditions=[cond("temperature", "lt", 5)], message="Cold: {temperature}")


@pytest.fixture
def live_hot(admin_user) -> RulesetVersion:
    services.rule_save(spec=threshold_spec(30), user=admin_user)
    return services.ruleset_publish(user=admin_user, comment="first")


def comparable(specs: list[dict]) -> list[dict]:
    return [spec_normalize(spec) for spec in specs]


# -- discard the draft -------------------------------------------------------------------------
def test_discarding_the_draft_restores_the_live_version_and_is_recorded(admin_client, admin_user, live_hot):
    services.rule_save(spec=threshold_spec(35), user=admin_user)  # changed
    services.rule_save(spec=cold_spec(), user=admin_user)  # added
    services.ruleset_settings_save(settings={"advice_limit": 1}, user=admin_user)
    assert "Discard the draft…" in text(admin_client.get(LIST))

    confirm = text(admin_client.get(DISCARD))
    assert "Yes, discard the draft" in confirm and "live version 1" in confirm
    assert "30 °C" in confirm and "35 °C" in confirm and "cold" in confirm  # what will be lost
    assert comparable(ruleset_draft_specs()) != live_hot.snapshot  # a GET changes nothing

    response = admin_client.post(DISCARD, {"_discard": "1"})

    assert response.status_code == 302
    assert MSG_DISCARDED.format(number=1) in text(admin_client.get(response["Location"]))
    assert comparable(ruleset_draft_specs()) == live_hot.snapshot
    assert ruleset_draft_settings() == live_hot.settings
    assert RulesetVersion.objects.count() == 1  # nothing was published
    discards = RuleChange.objects.filter(origin=RuleChange.Origin.DISCARD)
    undone = sorted((c.rule_key, c.action) for c in discards)
    assert undone == [("", "changed"), ("cold", "deleted"), ("hot", "changed")]
    assert {(c.changed_by, c.origin_version) for c in discards} == {(admin_user, 1)}
    log = text(admin_client.get(CHANGES))
    assert "draft discarded (back to version 1)" in log and admin_user.username in log
    assert "ruleset settings" in log and "Most pieces of advice per event: 1 → 3" in log


def test_discard_is_not_offered_when_the_draft_equals_the_live_version(admin_client, live_hot):
    assert "Discard the draft" not in text(admin_client.get(LIST))
    page = text(admin_client.get(DISCARD))
    assert MSG_NOTHING_TO_DISCARD in page and "Yes, discard the draft" not in page
    changes = RuleChange.objects.count()
    admin_client.post(DISCARD, {"_discard": "1"})
    assert RuleChange.objects.count() == changes


def test_discard_is_refused_when_nothing_was_ever_published(admin_client, admin_user):
    services.rule_save(spec=threshold_spec(30), user=admin_user)
    assert "Discard the draft" not in text(admin_client.get(LIST))
    assert MSG_NOTHING_LIVE in text(admin_client.post(DISCARD, {"_discard": "1"}))
    assert Rule.objects.filter(key="hot").exists()


def test_discarding_needs_the_permissions_to_add_change_and_delete_rules(client, admin_user, live_hot):
    services.rule_save(spec=threshold_spec(35), user=admin_user)
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename__in=["view_rule", "change_rule"]))
    client.force_login(viewer)
    assert "Discard the draft" not in text(client.get(LIST))
    assert client.post(DISCARD, {"_discard": "1"}).status_code == 403
    assert Rule.objects.get(key="hot").parameters.get().value == "35"


def test_discarding_leaves_rules_that_equal_the_live_version_untouched(admin_user, live_hot):
    services.rule_save(spec=cold_spec(), user=admin_user)
    revision = Rule.objects.get(key="hot").revision
    services.draft_discard(user=admin_user)
    assert Rule.objects.get(key="hot").revision == revision  # nobody's open editor goes stale
    assert not Rule.objects.filter(key="cold").exists()


# -- where each change came from ---------------------------------------------------------------
def origins() -> list[str]:
    return [change.origin_label for change in RuleChange.objects.order_by("id")]


def test_change_log_labels_hand_edits_roll_backs_imports_and_discards(admin_client, admin_user, live_hot, no_sign_off):
    services.rule_save(spec=threshold_spec(35), user=admin_user)
    services.ruleset_publish(user=admin_user, comment="second")
    admin_client.post(ROLLBACK, {"version": 1, "comment": "", "_confirm": "1"})
    pack = pack_dumps(pack_export(specs=[threshold_spec(40), cold_spec()]))
    admin_client.post(IMPORT, {"pack_text": pack, "_apply": "1"})
    admin_client.post(DISCARD, {"_discard": "1"})

    assert origins() == [
        "hand edit",  # hot created
        "hand edit",  # hot 30 -> 35
        "roll back to version 1",  # hot 35 -> 30
        "pack import",  # hot 30 -> 40
        "pack import",  # cold created
        "draft discarded (back to version 3)",  # cold deleted
        "draft discarded (back to version 3)",  # hot 40 -> 30
    ]
    log = text(admin_client.get(CHANGES))
    for label in ("hand edit", "roll back to version 1", "pack import", "draft discarded (back to version 3)"):
        assert label in log
    only_imports = text(admin_client.get(CHANGES, {"origin": "import"}))
    assert "pack import" in only_imports and "roll back to version 1" not in only_imports


def test_change_log_labels_a_pack_install_and_a_pack_upgrade(admin_client):
    first = Pack(rules=comparable([threshold_spec(30)]), settings={"advice_limit": 3})
    second = Pack(rules=comparable([threshold_spec(25), cold_spec()]), settings={"advice_limit": 3})
    pack_install(pack=first, comment="pack 1")
    pack_install(pack=second, earlier=[first], upgrade=True, comment="pack 2")
    assert origins() == ["pack install", "pack upgrade", "pack upgrade"]
    assert "pack upgrade" in text(admin_client.get(CHANGES))


def test_changes_recorded_before_origins_were_kept_are_not_called_hand_edits():
    change = RuleChange.objects.create(rule_key="hot", action="changed", before={}, after={}, origin="")
    assert change.origin_label == "not recorded"


def test_change_log_shows_a_new_rules_sentence(admin_client, admin_user):
    spec = threshold_spec(30)
    admin_client.post(reverse("admin:rules_rule_add"), editor_post(spec))
    rule = Rule.objects.prefetch_related("steps", "conditions", "parameters").get(key="hot")
    sentence = spec_describe(rule_spec(rule))
    assert RuleChange.objects.get().origin_label == "hand edit"
    assert f"New rule: {sentence}" in text(admin_client.get(CHANGES))
    editor = text(admin_client.get(reverse("admin:rules_rule_change", args=[rule.pk])))
    assert f"New rule: {sentence}" in editor and "hand edit" in editor


def test_settings_changes_are_in_the_change_log(admin_client, admin_user):
    admin_client.post(reverse("admin:rules_rule_settings"), {"advice_limit": "2"})
    change = RuleChange.objects.get()
    assert (change.rule_key, change.before, change.after) == ("", {"advice_limit": 3}, {"advice_limit": 2})
    page = text(admin_client.get(reverse("admin:rules_rulechange_change", args=[change.pk])))
    assert "ruleset settings" in page and "Most pieces of advice per event" in page


def test_a_long_new_rule_sentence_is_cut_in_the_list_and_whole_on_the_changes_page(admin_client):
    services.rule_save(spec=make_spec("wordy", message="Temperature {temperature}. " + "Open a window. " * 30))
    change = RuleChange.objects.get()
    sentence = spec_describe(change.after)
    listing = text(admin_client.get(CHANGES))
    assert sentence[:100] in listing and sentence not in listing and "…" in listing
    assert sentence in text(admin_client.get(reverse("admin:rules_rulechange_change", args=[change.pk])))
