"""Every admin action and page that writes needs its permission, checked on the server: a staff
user with only view permissions sees no button for it, and a POST of it answers the admin's
403 and changes nothing. Try it, simulate and the sentence write nothing, so viewing suffices."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from coaching.models import Advice, Event, Gym, Member
from rules.models import Rule, RuleChange, RulesetSettings, RulesetVersion
from rules.packs import pack_dumps, pack_export
from rules.selectors import rule_spec
from tests.rules.editor_data import editor_post

from .added_rules import FIRST_RUN_CHECK, MASSAGE_REFERRAL, rules_add
from .conftest import GymClient, cross, day, profile

pytestmark = pytest.mark.django_db

NOT_ALLOWED = "Your account does not have the permission for this page or action"


@pytest.fixture
def records(client: GymClient, pack) -> GymClient:
    """A gym with m-1 under referral (a massage, by a rule of our own) and its advice."""
    rules_add(MASSAGE_REFERRAL, FIRST_RUN_CHECK)
    client.send(profile(at=day(-1), cleared_by_physician=True), expect=201)
    client.send(cross(at=day(1), activity="massage", external_id="massage-1"), expect=201)
    Event.objects.filter(external_id="massage-1").update(evaluated=False)  # something to re-run
    return client


@pytest.fixture
def viewer(db) -> Client:
    """Staff with every view permission of the product's apps and of users, and nothing else."""
    user = get_user_model().objects.create_user("auditor", password="a-long-auditor-password", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label__in=["coaching", "rules", "auth"], codename__startswith="view_"
        )
    )
    browser = Client()
    browser.force_login(user)
    return browser


def state() -> tuple[Any, ...]:
    """Everything a writing action could change."""
    return (
        sorted(Rule.objects.values_list("key", "revision", "enabled")),
        RulesetVersion.objects.count(),
        RuleChange.objects.count(),
        list(RulesetSettings.objects.values_list("advice_limit", flat=True)),
        sorted(Gym.objects.values_list("name", "keys__key_hash", "keys__revoked_at")),
        sorted(Member.objects.values_list("external_id", "referral_since")),
        sorted(Event.objects.values_list("external_id", "evaluated")),
        sorted(Advice.objects.values_list("pk", "withdrawn_at")),
        get_user_model().objects.count(),
    )


def rule() -> Rule:
    return Rule.objects.prefetch_related("steps", "conditions", "parameters").get(key="pain-stop")


def action(model: str, name: str, pks: list[int], **extra: str) -> tuple[str, dict[str, Any]]:
    app = "rules" if model == "rule" else "coaching"
    return reverse(f"admin:{app}_{model}_changelist"), {"action": name, "_selected_action": pks, **extra}


def edited_rule() -> dict[str, str]:
    spec = rule_spec(rule())
    return editor_post({**spec, "name": "Changed by a viewer"}, revision=rule().revision)


def new_rule() -> dict[str, str]:
    return editor_post({**rule_spec(rule()), "key": "viewer-made", "name": "Made by a viewer"})


def imported_pack() -> dict[str, str]:
    return {"pack_text": pack_dumps(pack_export()), "_apply": "1"}


def m1() -> int:
    return Member.objects.get(external_id="m-1").pk


WRITES: dict[str, Callable[[], tuple[str, dict[str, Any]]]] = {
    # rules: the editor, deletion, the list's actions and the custom pages
    "add a rule": lambda: (reverse("admin:rules_rule_add"), new_rule()),
    "change a rule": lambda: (reverse("admin:rules_rule_change", args=[rule().pk]), edited_rule()),
    "delete a rule": lambda: (reverse("admin:rules_rule_delete", args=[rule().pk]), {"post": "yes"}),
    "enable rules": lambda: action("rule", "enable_rules", [rule().pk]),
    "disable rules": lambda: action("rule", "disable_rules", [rule().pk]),
    "delete rules": lambda: action("rule", "delete_selected", [rule().pk], post="yes"),
    "ruleset settings": lambda: (reverse("admin:rules_rule_settings"), {"advice_limit": "1"}),
    "publish": lambda: (reverse("admin:rules_rule_publish"), {"comment": "by a viewer"}),
    "roll back": lambda: (reverse("admin:rules_rule_rollback"), {"version": "1", "_confirm": "1"}),
    "discard the draft": lambda: (reverse("admin:rules_rule_discard"), {"_discard": "1"}),
    "import a pack": lambda: (reverse("admin:rules_rule_import"), imported_pack()),
    "delete a version": lambda: (reverse("admin:rules_rulesetversion_delete", args=[1]), {"post": "yes"}),
    "delete versions": lambda: (
        reverse("admin:rules_rulesetversion_changelist"),
        {"action": "delete_selected", "_selected_action": [1], "post": "yes"},
    ),
    # coaching: gyms, members, events, advice
    "add a gym": lambda: (reverse("admin:coaching_gym_add"), {"name": "Viewer Gym"}),
    "rename a gym": lambda: (reverse("admin:coaching_gym_change", args=[Gym.objects.get().pk]), {"name": "Renamed"}),
    "rotate a gym's key": lambda: action("gym", "rotate_key", [Gym.objects.get().pk]),
    "delete gyms": lambda: action("gym", "delete_selected", [Gym.objects.get().pk], post="yes"),
    "mark cleared (action)": lambda: action("member", "mark_cleared", [m1()]),
    "mark cleared (button)": lambda: (reverse("admin:coaching_member_clear_referral", args=[m1()]), {}),
    "delete a member": lambda: (reverse("admin:coaching_member_delete", args=[m1()]), {"post": "yes"}),
    "re-run evaluation": lambda: action("event", "reevaluate", list(Event.objects.values_list("pk", flat=True))),
    "delete events": lambda: action("event", "delete_selected", list(Event.objects.values_list("pk", flat=True))),
    "delete advice": lambda: action("advice", "delete_selected", list(Advice.objects.values_list("pk", flat=True))),
    # users
    "add a user": lambda: (
        reverse("admin:auth_user_add"),
        {
            "username": "new",
            "usable_password": "true",
            "password1": "a-long-new-password",
            "password2": "a-long-new-password",
        },
    ),
}


@pytest.mark.parametrize("write", WRITES)
def test_a_view_only_user_is_refused_every_write(records, viewer, write):
    url, data = WRITES[write]()
    before = state()
    response = viewer.post(url, data)
    assert response.status_code == 403, (write, response.status_code)
    assert NOT_ALLOWED in response.content.decode()  # the admin's look, not a bare "403 Forbidden"
    assert state() == before


def test_a_view_only_user_sees_no_button_that_writes(records, viewer):
    rules_list = viewer.get(reverse("admin:rules_rule_changelist"))
    page = rules_list.content.decode()
    for link in ("Publish", "Roll back", "Import pack", "Discard the draft", "Add rule"):
        assert link not in page, link
    assert rules_list.context["action_form"] is None
    assert 'data-editable="1"' not in viewer.get(reverse("admin:rules_rule_change", args=[rule().pk])).content.decode()
    assert "Save to draft" not in viewer.get(reverse("admin:rules_rule_settings")).content.decode()
    for model in ("gym", "member", "event", "advice"):
        changelist = viewer.get(reverse(f"admin:coaching_{model}_changelist"))
        assert changelist.status_code == 200 and changelist.context["action_form"] is None, model
    member_page = viewer.get(reverse("admin:coaching_member_change", args=[m1()])).content.decode()
    assert "Under referral since" in member_page and "Mark cleared" not in member_page
    gym_page = viewer.get(reverse("admin:coaching_gym_change", args=[Gym.objects.get().pk])).content.decode()
    assert 'name="_save"' not in gym_page


def test_reading_pages_that_post_write_nothing_and_need_only_viewing(records, viewer):
    before = state()
    sentence = viewer.post(reverse("admin:rules_rule_describe"), edited_rule())
    assert sentence.status_code == 200 and sentence.json()["sentence"]
    simulated = viewer.post(reverse("admin:rules_rule_simulate"), {"days": "30"}, follow=True)
    assert simulated.status_code == 200 and 'id="simulation-result"' in simulated.content.decode()  # kept as a job
    tried = {
        "fact_type": "run",
        "_shown_type": "run",
        "occurred_at": timezone.localtime().strftime("%Y-%m-%d %H:%M"),
        "data_pain_during": "8",
    }
    assert viewer.post(reverse("admin:rules_rule_try"), tried).status_code == 200
    assert state() == before


def test_the_key_rotation_works_with_the_change_permission(records):
    user = get_user_model().objects.create_user("operator", password="a-long-operator-password", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_gym", "change_gym"]))
    browser = Client()
    browser.force_login(user)
    gym = Gym.objects.get()
    before = set(gym.keys.values_list("key_hash", flat=True))
    assert browser.post(*action("gym", "rotate_key", [gym.pk])).status_code == 302
    assert set(gym.keys.filter(revoked_at__isnull=True).values_list("key_hash", flat=True)).isdisjoint(before)
