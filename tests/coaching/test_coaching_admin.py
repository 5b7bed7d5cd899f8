"""The coaching admin as clinicians use it: members under referral and "mark cleared", writing
actions only with their permission, withdrawn advice shown as such."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from coaching import admin as coaching_admin
from coaching import words
from coaching.models import Advice, Event, Member
from coaching.services import clinician_ensure

from .added_rules import FIRST_RUN_CHECK, MASSAGE_REFERRAL, rules_add
from .conftest import GymClient, cross, day, engine_break, profile, run

pytestmark = pytest.mark.django_db

MEMBERS = "/admin/coaching/member/"
EVENTS = "/admin/coaching/event/"
ADVICE = "/admin/coaching/advice/"


@pytest.fixture
def referred(client: GymClient, pack) -> GymClient:
    """m-1 under referral since a massage (by a rule of our own); m-2 not."""
    rules_add(MASSAGE_REFERRAL, FIRST_RUN_CHECK)
    for member in ("m-1", "m-2"):
        client.send(profile(at=day(-1), member=member, cleared_by_physician=True), expect=201)
    client.send(cross(at=day(1), activity="massage", external_id="massage-1"), expect=201)
    client.send(run(at=day(2), member="m-2"), expect=201)
    return client


@pytest.fixture
def clinician(db) -> Client:
    user, _ = clinician_ensure(username="pt-anna", password="a-long-password")
    user.first_name, user.last_name = "Anna", "Berg"
    user.save(update_fields=["first_name", "last_name"])
    browser = Client()
    browser.force_login(user)
    return browser


@pytest.fixture
def viewer(db) -> Client:
    """A staff user who may read the coaching records and nothing else."""
    user = get_user_model().objects.create_user("front-desk", password="a-long-password", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="coaching", codename__in=["view_member", "view_event"])
    )
    browser = Client()
    browser.force_login(user)
    return browser


def member(external_id: str) -> Member:
    return Member.objects.get(external_id=external_id)


def listed(response: Any) -> list[str]:
    assert response.status_code == 200
    return [m.external_id for m in response.context["cl"].result_list]


def actions(response: Any) -> set[str]:
    """The actions the changelist offers (none: no action form at all)."""
    form = response.context["action_form"]
    return set() if form is None else {name for name, _ in form.fields["action"].choices if name}


def messages(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def referral_of(client: GymClient, external_id: str) -> Any:
    return client.get(f"/api/v1/members/{external_id}/").json()["referral"]


# -- members under referral --------------------------------------------------------------------
def test_the_filter_lists_members_under_referral(referred, clinician):
    assert listed(clinician.get(MEMBERS, {"referral": "yes"})) == ["m-1"]
    assert listed(clinician.get(MEMBERS, {"referral": "no"})) == ["m-2"]
    page = clinician.get(MEMBERS).content.decode()
    assert "Under referral" in page
    # The referral began with the referring event: its moment in the member's own time, as everywhere.
    assert f"Since {words.local_moment(day(1), 0)}: {MASSAGE_REFERRAL['name']}" in page


def test_the_member_page_says_who_referred_them_and_why(referred, clinician):
    page = clinician.get(f"{MEMBERS}{member('m-1').pk}/change/").content.decode()
    assert f"Under referral since {words.local_moment(day(1), 0)}" in page
    assert f"when the rule “{MASSAGE_REFERRAL['name']}” gave its advice on the cross-training of that moment" in page
    assert MASSAGE_REFERRAL["key"] not in page  # the rule by its name: no code
    assert coaching_admin.REFERRAL_NOT_CLEARED in page or "came before it" in page
    assert reverse("admin:coaching_event_change", args=[Event.objects.get(external_id="massage-1").pk]) in page
    assert "Mark cleared" in page

    other = clinician.get(f"{MEMBERS}{member('m-2').pk}/change/").content.decode()
    assert coaching_admin.REFERRAL_NONE in other and "Mark cleared" not in other


def test_mark_cleared_records_the_clinicians_name_and_ends_the_referral(referred, clinician):
    assert referral_of(referred, "m-1")["event"] == "massage-1"
    response = clinician.post(
        MEMBERS, {"action": "mark_cleared", "_selected_action": [member("m-1").pk, member("m-2").pk]}, follow=True
    )
    assert coaching_admin.REFERRAL_CLEARED.format(members="m-1") in messages(response)
    assert coaching_admin.REFERRAL_NOTHING_TO_CLEAR.format(members="m-2") in messages(response)

    [clearance] = Event.objects.filter(member__external_id="m-1", recorded_by="Anna Berg")
    assert clearance.type == "profile" and clearance.data == {"cleared_by_physician": True}
    assert clearance.evaluated
    assert not Event.objects.filter(member__external_id="m-2", type="profile", recorded_by__gt="").exists()
    assert referral_of(referred, "m-1") is None
    assert listed(clinician.get(MEMBERS, {"referral": "yes"})) == []
    page = clinician.get(f"{MEMBERS}{member('m-1').pk}/change/").content.decode()
    assert "recorded by Anna Berg" in page


def test_the_mark_cleared_button_asks_first_then_clears(referred, clinician):
    url = reverse("admin:coaching_member_clear_referral", args=[member("m-1").pk])
    confirm = clinician.get(url)
    assert confirm.status_code == 200
    assert "a physician cleared m-1" in confirm.content.decode()
    assert referral_of(referred, "m-1") is not None  # asking changes nothing

    response = clinician.post(url, follow=True)
    assert response.redirect_chain[-1][0] == reverse("admin:coaching_member_change", args=[member("m-1").pk])
    assert coaching_admin.REFERRAL_CLEARED.format(members="m-1") in messages(response)
    assert referral_of(referred, "m-1") is None
    assert Event.objects.get(member__external_id="m-1", recorded_by="Anna Berg").type == "profile"


def test_a_referring_event_after_mark_cleared_refers_again(referred, clinician):
    clinician.post(reverse("admin:coaching_member_clear_referral", args=[member("m-1").pk]))
    assert referral_of(referred, "m-1") is None
    later = timezone.now() + dt.timedelta(minutes=1)
    referred.send(cross(at=later, activity="massage", external_id="massage-2"), expect=201)
    assert referral_of(referred, "m-1")["event"] == "massage-2"


def test_staff_who_may_only_view_cannot_mark_cleared(referred, viewer):
    changelist = viewer.get(MEMBERS)
    assert changelist.status_code == 200
    assert "mark_cleared" not in actions(changelist)
    page = viewer.get(f"{MEMBERS}{member('m-1').pk}/change/")
    assert page.status_code == 200 and "Mark cleared" not in page.content.decode()

    events_before = Event.objects.count()
    viewer.post(MEMBERS, {"action": "mark_cleared", "_selected_action": [member("m-1").pk]})
    url = reverse("admin:coaching_member_clear_referral", args=[member("m-1").pk])
    assert viewer.get(url).status_code == 403
    assert viewer.post(url).status_code == 403
    assert Event.objects.count() == events_before
    assert referral_of(referred, "m-1")["event"] == "massage-1"


# -- re-running evaluation ----------------------------------------------------------------------
def test_rerunning_evaluation_needs_its_permission(referred, clinician, viewer):
    assert "reevaluate" in actions(clinician.get(EVENTS))
    assert "reevaluate" not in actions(viewer.get(EVENTS))

    massage = Event.objects.get(external_id="massage-1")
    Event.objects.filter(pk=massage.pk).update(evaluated=False, evaluation_error="engine down")
    viewer.post(EVENTS, {"action": "reevaluate", "_selected_action": [massage.pk]})
    massage.refresh_from_db()
    assert massage.evaluated is False

    response = clinician.post(EVENTS, {"action": "reevaluate", "_selected_action": [massage.pk]}, follow=True)
    assert coaching_admin.REEVALUATED.format(events="1 event", failed=0) in messages(response)
    massage.refresh_from_db()
    assert massage.evaluated is True
    assert Advice.objects.filter(event=massage).count() == 1


# -- withdrawn advice ---------------------------------------------------------------------------
def test_the_advice_list_tells_current_from_withdrawn_advice(referred, clinician):
    referred.send(run(at=day(1), member="m-2", external_id="late-first-run"), expect=201)
    withdrawn = Advice.objects.get(rule_key=FIRST_RUN_CHECK["key"], withdrawn_at__isnull=False)

    def rows(**params: str) -> set[tuple[str, bool]]:
        response = clinician.get(ADVICE, {"rule_key": FIRST_RUN_CHECK["key"], **params})
        assert response.status_code == 200
        return {(a.event.external_id, a.withdrawn_at is not None) for a in response.context["cl"].result_list}

    assert rows() == {("late-first-run", False), (withdrawn.event.external_id, True)}
    assert rows(withdrawn="no") == {("late-first-run", False)}
    assert rows(withdrawn="yes") == {(withdrawn.event.external_id, True)}
    page = clinician.get(ADVICE, {"withdrawn": "yes"}).content.decode()
    assert "Current or withdrawn" in page and "Withdrawn " in page
    reason = words.dates_in_words(withdrawn.withdrawn_reason)  # the sentence gyms get, its dates in words
    assert reason[:40] in page
    detail = clinician.get(f"{ADVICE}{withdrawn.pk}/change/").content.decode()
    assert reason in detail and "late-first-run" in detail


def test_mark_cleared_while_evaluation_fails_is_recorded_and_completed_later(referred, clinician, monkeypatch):
    engine_break(monkeypatch)
    response = clinician.post(MEMBERS, {"action": "mark_cleared", "_selected_action": [member("m-1").pk]}, follow=True)
    monkeypatch.undo()
    assert coaching_admin.REFERRAL_CLEARED_NOT_JUDGED.format(member="m-1") in messages(response)
    clearance = Event.objects.get(member__external_id="m-1", recorded_by="Anna Berg")
    assert clearance.evaluated is False
    assert referral_of(referred, "m-1") is not None

    call_command("reevaluate", "--pending", stdout=io.StringIO(), stderr=io.StringIO())
    assert referral_of(referred, "m-1") is None
