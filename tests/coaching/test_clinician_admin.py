"""The clinician workflow in the admin with the running domain: author, simulate, publish,
roll back, share packs, and nothing about gyms or keys."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from coaching.models import Event, Gym, Member
from coaching.services import clinician_ensure
from rules import simulation
from rules.models import Rule, RulesetVersion
from rules.selectors import rule_spec, ruleset_draft_specs, version_live
from rules.services import MSG_CONFLICT
from rules.spec import spec_normalize
from tests.rules.editor_data import editor_post

from .conftest import approved_by_another_clinician, run

pytestmark = pytest.mark.django_db

RULES = "/admin/rules/rule/"


@pytest.fixture
def clinician(db, pack) -> Client:
    user, _ = clinician_ensure(username="pt-anna", password="a-long-password")
    browser = Client()
    browser.force_login(user)
    return browser


def pain_stop() -> Rule:
    return Rule.objects.prefetch_related("steps", "conditions", "parameters").get(key="pain-stop")


def threshold_post(value: int, revision: int) -> dict[str, str]:
    spec = rule_spec(pain_stop())
    spec["parameters"][0]["value"] = value
    return editor_post(spec, revision=revision)


def recent(days_ago: float) -> str:
    return (timezone.now() - dt.timedelta(days=days_ago)).isoformat()


# -- authoring, publishing, rolling back ---------------------------------------------------------
def test_clinician_edits_a_threshold_publishes_and_the_api_follows(clinician, client):
    rule = pain_stop()
    response = clinician.post(f"{RULES}{rule.pk}/change/", threshold_post(7, rule.revision))
    assert response.status_code == 302
    assert version_live().number == 1  # a draft edit changes nothing live
    # Each run is a new member's, so that one painful run never follows another.
    assert "pain-stop" in client.fired(run(at=timezone.now() - dt.timedelta(hours=1), pain_during=6, member="a"))

    asked = clinician.post(reverse("admin:rules_rule_publish"), {"comment": "Threshold 7"})
    assert asked.status_code == 302 and version_live().number == 1  # asked: another clinician approves
    assert approved_by_another_clinician(asked["Location"])[0].status_code == 302
    live = version_live()
    assert (live.number, live.comment, live.created_by.username) == (2, "Threshold 7", "pt-anna")
    assert "pain-stop" not in client.fired(run(at=timezone.now() - dt.timedelta(hours=1), pain_during=6, member="b"))

    asked = clinician.post(reverse("admin:rules_rule_rollback"), {"version": 1, "_confirm": "1"})
    assert asked.status_code == 302 and version_live().number == 2
    assert approved_by_another_clinician(asked["Location"])[0].status_code == 302
    assert version_live().rolled_back_from == 1
    assert "pain-stop" in client.fired(run(at=timezone.now() - dt.timedelta(hours=1), pain_during=6, member="c"))
    assert pain_stop().parameters.get().value == "5"  # the draft follows the rollback


def test_the_second_of_two_concurrent_edits_is_refused(clinician, db):
    rule = pain_stop()
    other_user, _ = clinician_ensure(username="pt-ben", password="another-password")
    other = Client()
    other.force_login(other_user)
    loaded = rule.revision
    assert clinician.post(f"{RULES}{rule.pk}/change/", threshold_post(7, loaded)).status_code == 302
    refused = other.post(f"{RULES}{rule.pk}/change/", threshold_post(8, loaded))
    assert refused.status_code == 200
    assert MSG_CONFLICT.format(mine=loaded, theirs=loaded + 1)[:50] in refused.content.decode()
    assert pain_stop().parameters.get().value == "7"


def test_rule_list_shows_the_live_version_and_what_the_draft_changes(clinician):
    rule = pain_stop()
    clinician.post(f"{RULES}{rule.pk}/change/", threshold_post(7, rule.revision))
    page = clinician.get(RULES).content.decode()
    assert "Live: version 1" in page and "Draft: 1 changed" in page and "draft: changed" in page


def test_the_sentence_reads_like_the_rule(clinician):
    rule = pain_stop()
    sentence = clinician.post(reverse("admin:rules_rule_describe"), threshold_post(7, rule.revision)).json()["sentence"]
    assert sentence.startswith(
        "When a run has pain during the run of 7 or more (out of 10) or pain after the run "
        "of 7 or more (out of 10): stop running for now — “"
    )


# -- packs ----------------------------------------------------------------------------------------
def test_export_import_round_trip_gives_the_identical_ruleset(clinician):
    exported = clinician.get(reverse("admin:rules_rule_export"))
    text = exported.content.decode()
    rule = pain_stop()
    clinician.post(f"{RULES}{rule.pk}/change/", threshold_post(9, rule.revision))
    upload = SimpleUploadedFile("pack.json", text.encode(), content_type="application/json")
    preview = clinician.post(reverse("admin:rules_rule_import"), {"pack": upload}).content.decode()
    assert "1 changed" in preview and "Pain threshold" in preview
    assert clinician.post(reverse("admin:rules_rule_import"), {"pack_text": text, "_apply": "1"}).status_code == 302
    assert [spec_normalize(s) for s in ruleset_draft_specs()] == json.loads(text)["rules"]
    assert (
        clinician.post(reverse("admin:rules_rule_publish"), {"comment": "imported"}).status_code == 200
    )  # nothing new
    assert RulesetVersion.objects.count() == 1


# -- simulation -------------------------------------------------------------------------------------
def test_simulation_counts_on_a_known_history(clinician, client):
    client.history(
        run(at=timezone.now() - dt.timedelta(days=3), pain_during=5),  # fires pain-stop at 5, not at 6
        run(at=timezone.now() - dt.timedelta(days=2), pain_during=6, member="m-3"),  # fires at both
        run(at=timezone.now() - dt.timedelta(days=1), pain_after=5, member="m-2"),  # at 5 only
        run(at=timezone.now() - dt.timedelta(days=40), pain_during=6, member="m-4"),  # outside the 30 days
    )
    rule = pain_stop()
    clinician.post(f"{RULES}{rule.pk}/change/", threshold_post(6, rule.revision))
    result = simulation.ruleset_simulate(days=30)
    assert result.events == 3
    impacts = {r.key: r for r in result.rules}
    stop = impacts["pain-stop"]
    assert (stop.live, stop.draft, stop.appear, stop.disappear, stop.change) == (3, 1, 0, 2, 1)
    assert sorted(stop.examples["disappear"]) == ["m-1 (Riverside Runners)", "m-2 (Riverside Runners)"]
    # pain-stop holds back less urgent advice: where it no longer fires, pain-rising is given.
    assert [r.key for r in result.changed_rules] == ["pain-rising", "pain-stop"]
    rising = impacts["pain-rising"]
    assert (rising.appear, rising.disappear) == (1, 0)

    page = clinician.post(reverse("admin:rules_rule_simulate"), {"days": 30}, follow=True).content.decode()
    assert "2 would disappear" in page and "m-2 (Riverside Runners)" in page
    assert "Run, 3 km in 20 min on the road, pain 0 → 0 → 5" in page  # each event in words


@pytest.mark.slow
def test_simulating_20000_stored_events_of_200_members(clinician):
    """The size a clinician simulates routinely (its speed is measured by make bench, not here)."""
    rng = random.Random(7)
    gym = Gym.objects.create(name="Big gym")
    members = Member.objects.bulk_create([Member(gym=gym, external_id=f"m-{i}") for i in range(200)])
    now = timezone.now()
    rows = []
    for member in members:
        for j in range(100):
            at = now - dt.timedelta(hours=rng.uniform(1, 29 * 24))
            if rng.random() < 0.75:
                kind = "run"
                data = {
                    "distance_km": round(rng.uniform(2, 12), 1),
                    "duration_min": rng.randint(15, 80),
                    "surface": rng.choice(["road", "hills", "trail"]),
                    "warmup_min": rng.randint(0, 10),
                    "pain_before": rng.randint(0, 3),
                    "pain_during": rng.randint(0, 8),
                    "pain_after": rng.randint(0, 8),
                }
            else:
                kind, data = "pain_report", {"pain": rng.randint(0, 8)}
            rows.append(
                Event(
                    gym=gym,
                    member=member,
                    external_id=f"e-{member.pk}-{j}",
                    type=kind,
                    occurred_at=at,
                    data=data,
                    content_hash="x",
                    evaluated=True,
                )
            )
    Event.objects.bulk_create(rows, batch_size=2000)
    rule = pain_stop()
    clinician.post(f"{RULES}{rule.pk}/change/", threshold_post(7, rule.revision))
    result = simulation.ruleset_simulate(days=30)
    assert (result.events, result.subjects) == (20000, 200)
    stop = next(r for r in result.rules if r.key == "pain-stop")
    assert stop.disappear > 0 and stop.appear == 0  # a higher threshold only takes pain-stop away
    # Other rules may gain advice where pain-stop no longer takes a place under the limit or
    # holds them back; the totals are the rules' own counts.
    assert result.totals["draft"] == sum(r.draft for r in result.rules)
    assert result.totals["live"] == sum(r.live for r in result.rules)


# -- try it and statistics -------------------------------------------------------------------------
def test_try_it_with_a_real_members_history(clinician, client):
    client.history(run(at=timezone.now() - dt.timedelta(days=2)), run(at=timezone.now() - dt.timedelta(days=1)))
    member = Member.objects.get(external_id="m-1")
    url = reverse("admin:rules_rule_try")
    page = clinician.post(
        url,
        {
            "fact_type": "run",
            "_shown_type": "run",
            "occurred_at": timezone.localtime().strftime("%Y-%m-%d %H:%M"),
            "subject": str(member.pk),
            "data_distance_km": "4",
            "data_duration_min": "30",
            "data_pain_during": "6",
        },
    ).content.decode()
    assert "pain-stop" in page and "rest-days" in page
    assert "Pain during the run = <b>6 /10</b>" in page
    assert "Days in a row with a run" in page and Event.objects.count() == 2


def test_try_it_offers_and_shows_choices_by_their_labels(clinician):
    url = reverse("admin:rules_rule_try")
    form = clinician.get(f"{url}?type=run").content.decode()
    assert '<option value="leaning_back">leaning back</option>' in form
    assert "One of good, slouching, overstriding, leaning back" in form
    page = clinician.post(
        url,
        {
            "fact_type": "run",
            "_shown_type": "run",
            "occurred_at": timezone.localtime().strftime("%Y-%m-%d %H:%M"),
            "data_distance_km": "4",
            "data_duration_min": "30",
            "data_posture": "leaning_back",
        },
    ).content.decode()
    assert "<tr><td>Posture</td><td>leaning back</td>" in page
    assert "leaning_back</td>" not in page


def test_statistics_count_advice_per_rule(clinician, client):
    client.fired(run(at=timezone.now() - dt.timedelta(hours=2), pain_during=6))
    page = clinician.get(reverse("admin:rules_rule_statistics")).content.decode()
    row = page.split('<tr data-rule="pain-stop" class="">')[1].split("</tr>")[0]
    assert row.strip().startswith('<td><a href="/admin/rules/rule/statistics/pain-stop/?first=')
    assert 'Stop when it hurts</a> <span class="rules-key">pain-stop</span>' in row
    assert "<td>Stop running for now</td>" in row and '<td class="num" data-figure="given">1</td>' in row
    assert "<svg" in row


# -- permissions ---------------------------------------------------------------------------------
def test_clinicians_can_do_the_whole_workflow_but_nothing_about_gyms_or_keys(clinician, client):
    for url in (
        RULES,
        f"{RULES}add/",
        reverse("admin:rules_rule_publish"),
        reverse("admin:rules_rule_rollback"),
        reverse("admin:rules_rule_simulate"),
        reverse("admin:rules_rule_try"),
        reverse("admin:rules_rule_statistics"),
        reverse("admin:rules_rule_export"),
        reverse("admin:rules_rule_import"),
        reverse("admin:rules_rulesetversion_changelist"),
        reverse("admin:rules_rulechange_changelist"),
        "/admin/coaching/event/",
        "/admin/coaching/advice/",
        "/admin/coaching/member/",
    ):
        assert clinician.get(url).status_code == 200, url
    gym = client.gym
    for url in ("/admin/coaching/gym/", f"/admin/coaching/gym/{gym.pk}/change/", "/admin/coaching/gym/add/"):
        assert clinician.get(url).status_code in (403, 302), url
    assert clinician.post("/admin/coaching/gym/add/", {"name": "Sneaky"}).status_code == 403
    assert not Gym.objects.filter(name="Sneaky").exists()
    page = clinician.get("/admin/").content.decode()
    assert "/admin/coaching/gym/" not in page
