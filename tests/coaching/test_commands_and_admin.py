"""Operator commands (docs/deployment.md) and the admin for operators and clinicians."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client

from coaching.models import Advice, Event, Gym
from coaching.services import CLINICIANS_GROUP, clinician_ensure

from .conftest import EVENTS_URL, GymClient, day, engine_break, pain, run

pytestmark = pytest.mark.django_db


def _call(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_creategym_prints_a_working_key_as_the_last_line():
    out, _ = _call("creategym", "Northside Track Club")
    key = out.strip().splitlines()[-1]
    gym = Gym.objects.get(name="Northside Track Club")
    assert GymClient(key, gym).get(EVENTS_URL).status_code == 200
    assert not gym.keys.filter(key_hash=key).exists()


def test_creategym_again_creates_no_second_gym_and_prints_no_key():
    _call("creategym", "Northside")
    out, err = _call("creategym", "Northside")
    assert Gym.objects.filter(name="Northside").count() == 1
    assert out == "" and "--rotate" in err


def test_creategym_rotate_issues_a_new_key_and_revokes_the_old():
    old = _call("creategym", "Northside")[0].strip().splitlines()[-1]
    new = _call("creategym", "Northside", "--rotate")[0].strip().splitlines()[-1]
    gym = Gym.objects.get(name="Northside")
    assert new != old
    assert GymClient(old, gym).get(EVENTS_URL).status_code == 401
    assert GymClient(new, gym).get(EVENTS_URL).status_code == 200


def test_createclinician_makes_a_staff_user_in_the_clinicians_group():
    _call("createclinician", "dr-lee", "--password", "s3cret-clinic-pass")
    _call("createclinician", "dr-lee", "--password", "s3cret-clinic-pass")  # idempotent
    user = get_user_model().objects.get(username="dr-lee")
    assert user.is_staff and not user.is_superuser
    assert user.check_password("s3cret-clinic-pass")
    assert list(user.groups.values_list("name", flat=True)) == [CLINICIANS_GROUP]


def test_clinicians_read_coaching_records_and_manage_rules_but_not_gyms():
    clinician_ensure(username="dr-lee", password="a-long-clinician-password")
    perms = set(Group.objects.get(name=CLINICIANS_GROUP).permissions.values_list("content_type__app_label", "codename"))
    assert {("coaching", "view_event"), ("coaching", "view_advice"), ("coaching", "view_member")} <= perms
    # The only writes: marking a referral cleared and re-running evaluations (admin actions),
    # and keeping the list of override reasons offered with each card.
    writes = {p[1] for p in perms if p[0] == "coaching" and not p[1].startswith("view_")}
    assert writes == {
        "clear_referral",
        "reevaluate_event",
        "add_overridereason",
        "change_overridereason",
        "delete_overridereason",
    }
    assert not {p for p in perms if p[1].endswith("_gym")}
    rules_perms = {codename for app, codename in perms if app == "rules"}
    assert rules_perms and {"add_rule", "change_rule", "delete_rule", "view_rule"} <= rules_perms


def test_installpack_is_idempotent():
    assert "published" in _call("installpack")[0]
    assert "already" in _call("installpack")[0]


@pytest.mark.parametrize("command", ["creategym", "createclinician", "reevaluate", "installpack", "importevents"])
def test_commands_have_help(command):
    from django.core.management import get_commands, load_command_class

    parser = load_command_class(get_commands()[command], command).create_parser("manage.py", command)
    assert parser.format_help()


def test_reevaluate_reports_what_it_did(client, pack, monkeypatch):
    engine_break(monkeypatch)
    client.history(run(pain_during=6), pain(pain=1))
    monkeypatch.undo()
    out, _ = _call("reevaluate")
    assert "Re-evaluated 2 events" in out
    assert Event.objects.filter(evaluated=False).count() == 0
    assert Advice.objects.filter(rule_key="pain-stop").count() == 1


def test_reevaluate_rejects_an_unknown_member():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        _call("reevaluate", "--member", "nobody")


# -- admin -----------------------------------------------------------------------------------
@pytest.fixture
def superuser_client(db) -> Client:
    root = get_user_model().objects.create_superuser("root", "root@example.com", "a-long-root-password")
    browser = Client()
    browser.force_login(root)
    return browser


def test_admin_creates_a_gym_and_shows_its_key_once(superuser_client):
    response = superuser_client.post("/admin/coaching/gym/add/", {"name": "Admin Gym"}, follow=True)
    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    gym = Gym.objects.get(name="Admin Gym")
    key_message = next(m for m in messages if "API key" in m)
    key = key_message.split(": ", 1)[1].split(" ")[0]
    assert GymClient(key, gym).get(EVENTS_URL).status_code == 200
    page = superuser_client.get(f"/admin/coaching/gym/{gym.pk}/change/").content.decode()
    assert key not in page and gym.keys.get().key_hash not in page


def test_admin_lists_load_for_a_clinician(client, pack):
    client.history(run(pain_during=7, member="m-9"))
    clinician_ensure(username="dr-lee", password="a-long-clinician-password")
    browser = Client()
    # Through the login page: the lockout's backend needs the request (Client.login gives none).
    login = {"username": "dr-lee", "password": "a-long-clinician-password", "next": "/admin/"}
    assert browser.post("/admin/login/", login)["Location"] == "/admin/"
    for model in ("member", "event", "advice"):
        assert browser.get(f"/admin/coaching/{model}/").status_code == 200
    advice = Advice.objects.first()
    assert browser.get(f"/admin/coaching/advice/{advice.pk}/change/").status_code == 200
    assert browser.get("/admin/coaching/gym/").status_code == 403


def test_reevaluate_after_a_rule_fix_adds_the_new_advice_once(client, pack):
    from rules.models import Rule
    from rules.selectors import rule_spec
    from rules.services import rule_save, ruleset_publish

    client.history(run(at=day(0), pain_during=4), run(at=day(2)))
    assert not Advice.objects.filter(rule_key="pain-stop").exists()
    spec = rule_spec(Rule.objects.get(key="pain-stop"))
    spec["parameters"] = [{**p, "value": 4} for p in spec["parameters"]]
    rule_save(spec=spec)
    ruleset_publish(comment="pain-stop from 4")
    out, _ = _call("reevaluate", "--member", "m-1")
    assert "Re-evaluated 2 events: 1 new advice" in out
    _call("reevaluate")
    assert Advice.objects.filter(rule_key="pain-stop").count() == 1


def test_reevaluate_pending_leaves_evaluated_events_alone(client, pack):
    client.history(run(pain_during=7))
    out, _ = _call("reevaluate", "--pending")
    assert "Re-evaluated 0 events" in out


def test_creategym_refuses_a_blank_name():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        _call("creategym", "  ")
    assert not Gym.objects.exists()
