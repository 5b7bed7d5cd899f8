"""An event later than all of its member's others is judged from the running state of the
figures kept on the member's row, and only the member's events within the live rules' history
window are read. Whatever makes that state unusable (a late event, a failed evaluation, a
release that changed how a figure is counted) makes the next ingest read and count the whole
history again, and set right every stored figure: each event's stored figures are always what
counting the member's events up to it gives."""

from __future__ import annotations

import datetime as dt

import pytest

from coaching.evaluation import member_events
from coaching.figures import FIGURES_VERSION, figures_timeline, moment_unpack
from coaching.models import EARLIEST, Event, Member
from rules.evaluation import ruleset_live, ruleset_loaded
from rules.internal.runtime import loaded_live
from rules.spec import condition

from .added_rules import _rule, rules_add
from .conftest import day, engine_break, pain, profile, run
from .test_set_path import conflicts

pytestmark = pytest.mark.django_db

WINDOW = dt.timedelta(days=14)  # the default pack's widest pattern window


def stored_figures_are_the_counted_ones(external_id: str = "m-1", **gym) -> None:
    member = Member.objects.get(external_id=external_id, **gym)
    events = member_events(member)
    for event, counted in zip(events, figures_timeline(events), strict=True):
        expected = {k: v for k, v in counted.items() if k not in event.data}
        assert event.figures == expected, event.external_id


def long_history(client, days: int = 45) -> None:
    for n in range(days):
        client.send(run(at=day(n), distance_km=4 + n % 5, pain_during=n % 4), expect=201)
        if n % 6 == 2:
            client.send(pain(at=day(n, hour=5), pain=n % 7), expect=201)
    client.send(profile(at=day(3), experience="returning"), expect=201)  # late: read and counted whole


def test_on_time_events_are_judged_from_the_kept_state_reading_only_the_window(pack, client):
    long_history(client)
    member = Member.objects.get(external_id="m-1")
    last = Event.objects.filter(member=member).latest("occurred_at")
    assert member.read_from == last.occurred_at - WINDOW
    assert member.kept_state["figures"]["version"] == FIGURES_VERSION

    client.send([run(at=day(45 + n / 2), distance_km=6) for n in range(6)], expect=200)
    client.send(run(at=day(49), distance_km=30), expect=201)
    stored_figures_are_the_counted_ones()
    detail = client.member_detail()
    assert detail["figures"]["run_number"] == 45 + 7 and detail["profile"]["experience"] == "returning"


def test_a_state_kept_by_another_version_of_the_figures_is_counted_again_and_every_figure_set_right(pack, client):
    long_history(client, days=30)
    member = Member.objects.get(external_id="m-1")
    member.kept_state["figures"]["version"] = FIGURES_VERSION - 1  # as kept before a release
    member.save(update_fields=["kept_state"])
    oldest = Event.objects.filter(member=member).earliest("occurred_at")
    Event.objects.filter(pk=oldest.pk).update(figures={"counted": "the old way"})

    client.send(run(at=day(31)), expect=201)

    stored_figures_are_the_counted_ones()
    member.refresh_from_db()
    assert member.kept_state["figures"]["version"] == FIGURES_VERSION


def test_a_failed_evaluation_drops_the_kept_state_and_the_next_ingest_counts_everything(pack, client, monkeypatch):
    long_history(client, days=30)
    engine_break(monkeypatch)
    client.send(run(at=day(31), external_id="outage"), expect=201)
    monkeypatch.undo()
    member = Member.objects.get(external_id="m-1")
    assert (member.kept_state, member.read_from) == (None, EARLIEST)

    client.send([run(at=day(32)), pain(at=day(33), pain=3)], expect=200)

    assert Event.objects.get(external_id="outage").evaluated is True
    assert not Event.objects.filter(evaluated=False).exists()
    stored_figures_are_the_counted_ones()
    member.refresh_from_db()
    assert member.read_from > EARLIEST


# A pattern that reads a figure of an earlier event: the facts before the judged one then carry
# their figures (the default pack's patterns read only the events' own fields, and they do not).
LONG_WEEK_THEN_PAIN = _rule(
    "long-week-then-pain",
    "Pain after a long week",
    category="progression",
    severity="caution",
    message="Back pain of {pain}/10 within three days of a run that made a long week.",
    summary="Take it easy after a long week",
    pattern="sequence",
    window_hours=72,
    steps=[{"fact_type": "run"}, {"fact_type": "pain_report"}],
    conditions=[condition("weekly_distance_km", "gte", 40, step=1), condition("pain", "gte", 3, step=2)],
)


def test_a_pattern_reading_a_figure_of_an_earlier_event_sees_it_on_time_and_late(pack, client, other_client):
    rules_add(LONG_WEEK_THEN_PAIN)
    assert "weekly_distance_km" in ruleset_live().history_fields
    history = [run(at=day(n), distance_km=10, external_id=f"run-{n}") for n in range(6)]
    history.append(pain(at=day(6), pain=3, external_id="sore"))

    before = conflicts()
    for payload in history:  # on time: each judged from the member's kept state
        client.send(payload, expect=201)
    other_client.send(history[::-1], expect=200)  # late: each array judged from the whole history
    assert conflicts() == before  # judged on the set-based path, never refused for a short history

    for gym in (client, other_client):
        advice = [
            a
            for a in gym.get("/api/v1/members/m-1/advice/").json()["results"]
            if a["rule"]["key"] == LONG_WEEK_THEN_PAIN["key"]
        ]
        assert [(a["event"], a["matched_events"]) for a in advice] == [("sore", ["run-5", "sore"])]


def test_a_process_that_knows_an_older_version_reads_the_figures_a_newly_published_pattern_needs(pack, client):
    # Another web process may still know the version before the publish: it reads the events
    # without their figures, learns the live version from the same query, and reads again.
    history = [run(at=day(n), distance_km=10, external_id=f"run-{n}") for n in range(6)]
    for payload in history:
        client.send(payload, expect=201)
    member = Member.objects.get(external_id="m-1")
    assert member.read_from > EARLIEST  # judged from its kept state from now on
    older = ruleset_live().version
    rules_add(LONG_WEEK_THEN_PAIN)
    assert ruleset_live().version == older + 1
    loaded_live(older)  # this process, like one that has not yet seen the publish
    assert "weekly_distance_km" not in ruleset_loaded().history_fields

    before = conflicts()
    answer = client.send(pain(at=day(6), pain=3, external_id="sore"), expect=201).json()
    assert [
        (a["rule"]["key"], a["matched_events"]) for a in answer["advice"] if a["rule"]["key"] == "long-week-then-pain"
    ] == [("long-week-then-pain", ["run-5", "sore"])]
    assert conflicts() == before + 1  # read once more, now with the figures
    assert ruleset_loaded().version == older + 1


def test_a_state_kept_in_an_earlier_form_gives_what_the_stored_advice_says(pack, client, other_client):
    # Kept before: moments as ISO 8601 text, the policy's memory as its own "last_given", figures
    # of version 1. The policy's memory is read from the stored advice instead; the figures are
    # counted again.
    for gym in (client, other_client):
        long_history(gym, days=20)
    member = Member.objects.get(gym=client.gym, external_id="m-1")
    kept = member.kept_state
    assert isinstance(kept["through"][0], int) and kept["decision"]["last_given"]
    kept["through"][0] = moment_unpack(kept["through"][0]).isoformat()
    kept["last_given"] = {key: moment_unpack(at).isoformat() for key, at in kept.pop("decision")["last_given"].items()}
    kept["figures"]["version"] = 1
    member.save(update_fields=["kept_state"])

    later = [run(at=day(20), distance_km=9, pain_during=3), pain(at=day(20, hour=20), pain=5)]
    answers = [gym.send(later, expect=200).json() for gym in (client, other_client)]
    advice = [[[a["rule"]["key"] for a in item["event"]["advice"]] for item in items] for items in answers]
    assert advice[0] == advice[1] and any(advice[0])
    stored_figures_are_the_counted_ones(gym=client.gym)
    member.refresh_from_db()
    assert member.kept_state["figures"]["version"] == FIGURES_VERSION
