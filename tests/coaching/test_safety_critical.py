"""Safety-critical rules (docs/advice.md, docs/rulepack.md): no edit in the admin and no pack,
imported by a clinician or an operator, can switch them off, delete them or make them less
urgent; their numbers and wording stay a clinician's to tune."""

from __future__ import annotations

import copy
import io
import json

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from coaching.rulepack import SAFETY_CRITICAL
from coaching.services import clinician_ensure
from rules.models import Rule, RuleChange, RulesetVersion
from rules.packs import pack_export
from rules.selectors import rule_spec, ruleset_draft_specs, version_live
from rules.spec import (
    MSG_SAFETY_DELETE,
    MSG_SAFETY_DISABLE,
    MSG_SAFETY_MISSING,
    MSG_SAFETY_SEVERITY,
    MSG_SAFETY_STRUCTURE,
)
from tests.rules.editor_data import editor_post

pytestmark = pytest.mark.django_db

RULES = "/admin/rules/rule/"
EMERGENCY = "Emergency warning signs: get care now"


@pytest.fixture
def clinician(db, pack) -> Client:
    user, _ = clinician_ensure(username="pt-safe", password="a-long-password")
    browser = Client()
    browser.force_login(user)
    return browser


def rule(key: str = "red-flags-emergency") -> Rule:
    return Rule.objects.prefetch_related("steps", "conditions", "parameters").get(key=key)


def edit(clinician: Client, key: str, **changes) -> str:
    found = rule(key)
    spec = {**rule_spec(found), **changes}
    response = clinician.post(f"{RULES}{found.pk}/change/", editor_post(spec, revision=found.revision))
    return response.content.decode() if response.status_code == 200 else ""


def unchanged() -> tuple:
    return (ruleset_draft_specs(), RuleChange.objects.count(), RulesetVersion.objects.count())


# -- the admin -----------------------------------------------------------------------------------
def test_the_editor_does_not_offer_to_switch_off_delete_or_lower_a_safety_critical_rule(clinician):
    page = clinician.get(f"{RULES}{rule().pk}/change/").content.decode()
    assert "Safety-critical: this rule cannot be switched off" in page
    assert 'name="enabled"' in page and 'name="enabled" disabled' in page.replace(" checked", "")
    assert reverse("admin:rules_rule_delete", args=[rule().pk]) not in page
    severity = page[page.index('name="severity"') : page.index("</select>", page.index('name="severity"'))]
    assert 'value="emergency"' in severity and 'value="refer"' not in severity


def test_the_editor_offers_all_of_that_for_other_rules(clinician):
    page = clinician.get(f"{RULES}{rule('posture').pk}/change/").content.decode()
    assert "Safety-critical" not in page
    assert reverse("admin:rules_rule_delete", args=[rule("posture").pk]) in page


def test_a_lower_severity_posted_anyway_is_refused_with_the_reason(clinician):
    before = unchanged()
    page = edit(clinician, "red-flags-emergency", severity="refer")
    assert MSG_SAFETY_SEVERITY.format(name=EMERGENCY, severity="Get emergency care now") in page
    assert unchanged() == before


def test_a_change_to_what_it_looks_for_is_refused_with_the_reason(clinician):
    spec = rule_spec(rule())
    conditions = [c for c in spec["conditions"] if c["field"] != "saddle_numbness"]
    before = unchanged()
    page = edit(clinician, "red-flags-emergency", conditions=conditions)
    assert MSG_SAFETY_STRUCTURE.format(name=EMERGENCY) in page
    assert unchanged() == before


def test_its_numbers_and_wording_stay_a_clinicians_to_tune(clinician):
    spec = rule_spec(rule("severe-pain-refer"))
    spec["parameters"][0]["value"] = "8"
    found = rule("severe-pain-refer")
    response = clinician.post(
        f"{RULES}{found.pk}/change/",
        editor_post({**spec, "cooldown_days": 3, "summary": "Stop and see a physiotherapist"}, revision=found.revision),
    )
    assert response.status_code == 302
    saved = rule_spec(rule("severe-pain-refer"))
    assert (saved["parameters"][0]["value"], saved["cooldown_days"], saved["enabled"]) == ("8", 3, True)


def test_a_post_without_the_enabled_box_keeps_it_on(clinician):
    # The box is not offered, so the browser never sends it: the rule stays on.
    found = rule("red-flags")
    data = editor_post(rule_spec(found), revision=found.revision)
    data.pop("enabled", None)
    assert clinician.post(f"{RULES}{found.pk}/change/", data).status_code == 302
    assert rule("red-flags").enabled


def test_disabling_from_the_list_is_refused_with_the_reason_and_the_others_are_disabled(clinician):
    ids = [rule("red-flags-emergency").pk, rule("posture").pk]
    response = clinician.post(RULES, {"action": "disable_rules", "_selected_action": ids}, follow=True)
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert MSG_SAFETY_DISABLE.format(name=EMERGENCY) in texts
    assert rule("red-flags-emergency").enabled and not rule("posture").enabled


def test_deleting_is_refused_with_the_reason(clinician):
    found = rule("running-under-referral")
    response = clinician.post(reverse("admin:rules_rule_delete", args=[found.pk]), {"post": "yes"}, follow=True)
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert MSG_SAFETY_DELETE.format(name=found.name) in texts
    assert Rule.objects.filter(key="running-under-referral").exists()

    ids = [found.pk, rule("posture").pk]
    response = clinician.post(RULES, {"action": "delete_selected", "_selected_action": ids, "post": "yes"}, follow=True)
    assert MSG_SAFETY_DELETE.format(name=found.name) in [str(m) for m in get_messages(response.wsgi_request)]
    assert Rule.objects.filter(key__in=["running-under-referral", "posture"]).count() == 2


def test_the_rules_list_marks_the_safety_critical_rules(clinician):
    page = clinician.get(RULES).content.decode()
    assert "safety-critical" in page.lower()


def test_the_admins_pack_import_refuses_a_pack_without_them_and_changes_nothing(clinician):
    pack = pack_export()
    pack["rules"] = [spec for spec in pack["rules"] if spec["key"] != "severe-pain-refer"]
    before = unchanged()
    upload = SimpleUploadedFile("pack.json", json.dumps(pack).encode(), content_type="application/json")
    page = clinician.post(reverse("admin:rules_rule_import"), {"pack": upload}).content.decode()
    assert MSG_SAFETY_MISSING.format(name="Severe pain: get checked") in page
    assert unchanged() == before


# -- importpack ------------------------------------------------------------------------------------
def _pack_with(tmp_path, change) -> str:
    pack = copy.deepcopy(pack_export())
    change(pack["rules"])
    path = tmp_path / "pack.json"
    path.write_text(json.dumps(pack))
    return str(path)


def _import_refused(path: str) -> str:
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("importpack", path, "--publish", "--comment", "x", stdout=io.StringIO(), stderr=err)
    return err.getvalue()


def _set(key: str, **changes):
    def change(rules: list[dict]) -> None:
        next(spec for spec in rules if spec["key"] == key).update(changes)

    return change


@pytest.mark.parametrize(
    "change, expected",
    [
        (_set("red-flags-emergency", enabled=False), f"red-flags-emergency: enabled: {MSG_SAFETY_DISABLE}"),
        (_set("red-flags-urgent", severity="stop"), "red-flags-urgent: severity: "),
        (
            lambda rules: rules.remove(next(s for s in rules if s["key"] == "running-under-referral")),
            "running-under-referral: key: ",
        ),
        (_set("red-flags", refers=False), "red-flags: refers: "),
        (_set("severe-pain-refer", steps=[{"fact_type": "pain_report"}]), "severe-pain-refer: conditions: "),
    ],
)
def test_importpack_refuses_a_pack_that_weakens_a_safety_critical_rule_naming_it(pack, tmp_path, change, expected):
    path = _pack_with(tmp_path, change)
    before = unchanged()
    err = _import_refused(path)
    assert expected.split("{")[0] in err
    assert unchanged() == before and version_live().number == 1


def test_importpack_refuses_a_pack_with_every_rule_switched_off(pack, tmp_path):
    path = _pack_with(tmp_path, lambda rules: [spec.update(enabled=False) for spec in rules])
    err = _import_refused(path)
    for key in SAFETY_CRITICAL:
        assert f"{key}: enabled: " in err
    assert version_live().number == 1


def test_importpack_takes_a_pack_that_tunes_their_numbers(pack, tmp_path):
    def tune(rules: list[dict]) -> None:
        severe = next(spec for spec in rules if spec["key"] == "severe-pain-refer")
        severe["parameters"][0]["value"] = 8
        severe["cooldown_days"] = 3

    out = io.StringIO()
    call_command("importpack", _pack_with(tmp_path, tune), "--publish", "--comment", "tuned", stdout=out)
    live = {spec["key"]: spec for spec in version_live().snapshot}
    assert live["severe-pain-refer"]["parameters"][0]["value"] == 8 and version_live().number == 2
