"""Safe escalation in version 3 of the default pack: the emergency tier, referrals that never go
quiet, and clearances that clear what they cleared (docs/advice.md, "Referral" and "Clearance"),
through the HTTP API and the admin as gyms and clinicians use them. One test per story, each
with a nearby case that must not fire. The rules' own rows are in ``test_rulepack.py``.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from coaching.models import Member
from coaching.services import clinician_ensure

from .conftest import ADVICE_URL, MEMBERS_URL, GymClient, day, pain, profile, run

pytestmark = pytest.mark.django_db

EMERGENCY_SIGNS = ("bladder_or_bowel_change", "saddle_numbness", "leg_weakness")


@pytest.fixture
def client(client: GymClient, pack) -> GymClient:
    return client


def keys(advice: list[dict]) -> list[str]:
    return [a["rule"]["key"] for a in advice]


def reminder(advice: list[dict]) -> dict:
    [found] = [a for a in advice if a["rule"]["key"] == "running-under-referral"]
    return found


# -- the emergency tier ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "signs",
    [
        *[{sign: True} for sign in EMERGENCY_SIGNS],
        {"saddle_numbness": True, "bladder_or_bowel_change": True},
        {"leg_weakness": True, "fever": True, "night_pain": True, "numbness": True, "radiates_to_leg": True},
    ],
)
def test_an_emergency_sign_gets_exactly_one_advice_the_emergency_one_naming_the_signs(client, member, signs):
    client.history(pain(at=day(0), pain=6, radiates_to_leg=True), run(at=day(1), pain_during=6))
    advice = client.advice(pain(at=day(1, hour=3), pain=9, **signs))
    assert keys(advice) == ["red-flags-emergency"]
    assert advice[0]["severity"] == "emergency" and advice[0]["card"]["indicator"] == "critical"
    words = {
        "bladder_or_bowel_change": "a change in bladder or bowel control",
        "saddle_numbness": "numbness around the saddle area",
        "leg_weakness": "weakness in a leg",
    }
    for sign in EMERGENCY_SIGNS:
        assert (words[sign] in advice[0]["message"]) is (sign in signs)


def test_a_report_without_an_emergency_sign_gets_the_other_advice_as_before(client, member):
    client.history(pain(at=day(0), pain=6, radiates_to_leg=True), run(at=day(1), pain_during=6))
    advice = client.advice(pain(at=day(1, hour=3), pain=9, fever=True, numbness=True, radiates_to_leg=True))
    assert "red-flags-emergency" not in keys(advice)
    assert {"red-flags-urgent", "severe-pain-refer"} <= set(keys(advice))


def test_an_emergency_after_a_referral_within_days_takes_its_place(client, member):
    client.history(pain(at=day(0), pain=2, night_pain=True, external_id="nights"))
    assert client.referral()["rule"]["key"] == "red-flags"
    client.history(pain(at=day(2), pain=2, leg_weakness=True, external_id="weak"))
    referral = client.referral()
    assert (referral["rule"]["key"], referral["event"]) == ("red-flags-emergency", "weak")
    assert reminder(client.advice(run(at=day(3))))["severity"] == "emergency"


def test_a_referral_within_days_does_not_replace_an_emergency_one(client, member):
    client.history(pain(at=day(0), pain=2, saddle_numbness=True, external_id="numb"))
    client.history(pain(at=day(2), pain=2, night_pain=True))
    assert client.referral()["event"] == "numb"


# -- the order of advice ---------------------------------------------------------------------------
def test_one_events_advice_is_most_urgent_first_then_by_priority_then_key_everywhere(client, member):
    # A run under referral, within 72 hours of severe pain: the reminder (priority 50) and
    # ran-through-pain (60) are both referrals; by key alone ran-through-pain would come first.
    client.history(pain(at=day(0), pain=7))
    answer = client.advice(run(at=day(1), pain_during=4, external_id="sore-run"))
    expected = ["running-under-referral", "ran-through-pain"]
    assert keys(answer) == expected and sorted(expected) != expected

    member_list = client.get(f"{MEMBERS_URL}m-1/advice/").json()["results"]
    feed = client.get(ADVICE_URL).json()["results"]
    for listed in (member_list, feed):
        assert [a["rule"]["key"] for a in listed if a["event"] == "sore-run"] == expected

    repeat = client.send(run(at=day(1), pain_during=4, external_id="sore-run"), expect=200).json()
    assert keys(repeat["advice"]) == expected

    clinician = Client()
    clinician.force_login(clinician_ensure(username="pt-order", password="Quiet-River-2042")[0])
    member = Member.objects.get(external_id="m-1")
    page = clinician.get(reverse("admin:coaching_member_change", args=[member.pk])).content.decode()
    section = page[page.index("sore-run") :]
    assert section.index("Still under referral") < section.index("Ran through pain")


def test_severity_comes_before_priority(client):
    # A first run without clearance: the clearance (a referral, priority 130) before pain-stop (80).
    assert keys(client.advice(run(at=day(0), pain_during=6))) == ["medical-clearance", "pain-stop"]


# -- referral: never quiet -------------------------------------------------------------------------
def test_under_referral_every_run_gets_a_reminder_of_why_and_since_when_in_local_time(client, member):
    # 23:30 at a gym five hours behind UTC: 04:30 UTC the next day; the member's date is the 10th.
    evening = dt.datetime(2026, 11, 10, 23, 30, tzinfo=dt.timezone(-dt.timedelta(hours=5)))
    client.history(pain(at=evening, pain=8, external_id="bad-night"))
    for days_later in (1, 2, 6):
        advice = client.advice(run(at=evening + dt.timedelta(days=days_later)))
        note = reminder(advice)
        assert keys(advice) == ["running-under-referral"] and note["severity"] == "refer"
        assert note["message"].startswith("On 10 Nov 2026 you were advised: “Stop running and see a physician")
        assert "10 Nov 2026" in note["card"]["summary"] and note["card"]["indicator"] == "critical"


def test_no_reminder_before_a_referral_nor_on_the_run_that_starts_one_nor_on_a_pain_report(client, member):
    assert "running-under-referral" not in keys(client.advice(run(at=day(0))))
    assert keys(client.advice(run(at=day(1), pain_during=8))) == ["severe-pain-refer"]  # it starts here
    assert keys(client.advice(pain(at=day(1, hour=2), pain=5))) == ["pain-report-stop"]  # not a run


def test_the_reminder_is_as_urgent_as_the_referral_and_alone_after_an_emergency(client, member):
    client.history(pain(at=day(0), pain=6, saddle_numbness=True))
    advice = client.advice(run(at=day(1), pain_during=8, warmup_min=0))
    assert keys(advice) == ["running-under-referral"]  # severe pain and pain-stop held back
    assert (advice[0]["severity"], advice[0]["card"]["indicator"]) == ("emergency", "critical")
    assert "emergency" in advice[0]["message"]


def test_the_reminder_of_a_referral_within_days_is_a_referral(client, member):
    client.history(pain(at=day(0), pain=2, recent_trauma=True))
    assert reminder(client.advice(run(at=day(1))))["severity"] == "refer"


def test_ran_through_pain_refers_a_run_with_pain_within_72_hours_of_pain_of_5(client, member):
    client.history(run(at=day(0), pain_during=6, external_id="painful"))
    advice = client.advice(run(at=day(2), pain_after=3, external_id="again"))
    assert keys(advice) == ["ran-through-pain"]
    assert advice[0]["matched_events"] == ["painful", "again"] and "72 hours" in advice[0]["message"]
    assert client.referral()["rule"]["key"] == "ran-through-pain"


def test_ran_through_pain_counts_a_pain_report_as_the_painful_event(client, member):
    client.history(pain(at=day(0), pain=5))
    assert "ran-through-pain" in keys(client.advice(run(at=day(1), pain_during=3)))


@pytest.mark.parametrize(
    "history, later",
    [
        (run(at=day(0), pain_during=6), run(at=day(2), pain_after=2)),  # little pain on the run after
        (run(at=day(0), pain_during=4), run(at=day(2), pain_after=4)),  # no pain that says stop before
        (run(at=day(0), pain_during=6), run(at=day(3, hour=1), pain_after=4)),  # 73 hours later
    ],
)
def test_ran_through_pain_does_not_fire_nearby(client, member, history, later):
    client.history(history)
    assert "ran-through-pain" not in keys(client.advice(later))


# -- clearance -------------------------------------------------------------------------------------
def test_a_clearance_after_the_referral_ends_it_and_the_reminders(client, member):
    client.history(pain(at=day(0), pain=8), profile(at=day(1), cleared_by_physician=True))
    assert client.referral() is None
    assert keys(client.advice(run(at=day(2), warmup_min=0))) == ["warm-up"]


def test_a_clearance_from_before_the_referral_does_not_end_it(client, member):
    client.history(pain(at=day(1), pain=8))
    client.history(profile(at=day(0, hour=12), cleared_by_physician=True))  # late, but before the referral
    assert keys(client.advice(run(at=day(2)))) == ["running-under-referral"]


def test_a_clinicians_mark_cleared_ends_the_referral_and_the_reminders(client, member):
    now = timezone.now()
    client.history(pain(at=now - dt.timedelta(days=2), pain=8))
    assert keys(client.advice(run(at=now - dt.timedelta(days=1)))) == ["running-under-referral"]
    clinician = Client()
    clinician.force_login(clinician_ensure(username="pt-clear", password="Quiet-River-2042")[0])
    member = Member.objects.get(external_id="m-1")
    assert clinician.post(reverse("admin:coaching_member_clear_referral", args=[member.pk])).status_code == 302
    assert client.referral() is None
    assert "running-under-referral" not in keys(client.advice(run(at=now + dt.timedelta(hours=1))))


def test_a_clearance_ends_the_cooldowns_of_the_rules_that_refer(client, member):
    client.history(pain(at=day(0), pain=9), profile(at=day(1), cleared_by_physician=True))
    advice = client.advice(pain(at=day(2), pain=9, external_id="again"))
    assert keys(advice) == ["severe-pain-refer"]  # 2 days into its 7-day cooldown
    assert client.referral()["event"] == "again"


def test_without_a_clearance_the_cooldown_of_a_referring_rule_holds(client, member):
    client.history(pain(at=day(0), pain=9))
    assert keys(client.advice(pain(at=day(2), pain=9))) == ["pain-report-stop"]


def test_a_clearance_leaves_the_cooldowns_of_rules_that_do_not_refer(client, member):
    client.history(run(at=day(0), surface="hills"), profile(at=day(1), cleared_by_physician=True))
    assert "flat-surface" not in keys(client.advice(run(at=day(2), surface="hills")))


def test_a_back_injury_declared_after_a_clearance_needs_a_new_one(client):
    client.history(profile(at=day(-2), cleared_by_physician=True), run(at=day(-1)))
    client.history(profile(at=day(0), back_injury=True))
    assert "back-injury" in keys(client.advice(run(at=day(1))))
    client.history(profile(at=day(2), cleared_by_physician=True))
    assert "back-injury" not in keys(client.advice(run(at=day(10))))


def test_a_back_injury_declared_with_a_clearance_in_the_same_event_stays_cleared(client):
    client.history(profile(at=day(-2), cleared_by_physician=True), run(at=day(-1)))
    client.history(profile(at=day(0), back_injury=True, cleared_by_physician=True))
    assert "back-injury" not in keys(client.advice(run(at=day(1))))


def test_a_late_back_injury_voids_a_clearance_for_the_runs_after_it(client):
    client.history(profile(at=day(-2), cleared_by_physician=True), run(at=day(-1)), run(at=day(1), external_id="r1"))
    body = client.send(profile(at=day(0), back_injury=True), expect=201).json()
    assert [(a["rule"]["key"], a["event"]) for a in body["advice"]] == [("back-injury", "r1")]


# -- less noise --------------------------------------------------------------------------------------
def test_a_member_with_chronic_back_pain_is_not_told_their_pain_started_recently(client, member):
    client.history(profile(at=day(-0.5), chronic_back_pain=True))
    advice = client.advice(pain(at=day(0), pain=4))
    assert "acute-rest" not in keys(advice) and "recently" not in " ".join(a["message"] for a in advice)


def test_a_member_without_chronic_back_pain_is_told_so_for_new_pain(client, member):
    assert keys(client.advice(pain(at=day(0), pain=4))) == ["acute-rest"]


def test_a_chronic_member_is_not_referred_for_stable_long_lasting_pain(client, member):
    client.history(profile(at=day(-0.5), chronic_back_pain=True))
    onset = (day(0) - dt.timedelta(weeks=10)).date().isoformat()
    for week in range(0, 12, 4):
        assert "pain-not-improving" not in keys(client.advice(pain(at=day(7 * week), pain=4, onset_date=onset)))
    assert client.referral() is None
