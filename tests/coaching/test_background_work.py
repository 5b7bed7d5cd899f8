"""Work that outlives a request runs on the task queue: evaluations that failed or were cut off
are completed by a periodic job without an operator, exactly once; re-running the evaluation
of many members and long simulations run on a worker, with progress any web process reads."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from coaching import admin as coaching_admin
from coaching.jobs import reevaluate_start
from coaching.models import Advice, Event, Member
from coaching.services import clinician_ensure
from rules import simulation
from rules.models import Job, PeriodicRun, Rule
from rules.selectors import rule_spec
from rules.services import rule_save, ruleset_publish

from . import properties
from .conftest import day, engine_break, run
from .properties import gym_client

pytestmark = pytest.mark.django_db(transaction=True)

EVENTS = reverse("admin:coaching_event_changelist")


def worker() -> None:
    """One pass of a real worker: enqueue the periodic jobs that are due, run what is queued."""
    call_command("worker", "--batch", verbosity=0)


def advice_of(external_id: str) -> list[str]:
    return sorted(Advice.objects.filter(event__external_id=external_id).values_list("rule_key", flat=True))


@pytest.fixture
def clinician(db) -> Client:
    user, _ = clinician_ensure(username="pt-anna", password="a-long-password")
    browser = Client()
    browser.force_login(user)
    return browser


def test_an_evaluation_that_failed_is_completed_by_the_worker_without_an_operator(
    client, other_client, pack, monkeypatch
):
    engine_break(monkeypatch)
    assert client.send(run(at=day(0), pain_during=8, external_id="outage"), expect=201).json()["advice"] == []
    monkeypatch.undo()
    assert Event.objects.get(external_id="outage").evaluated is False
    other_client.send(run(at=day(0), pain_during=8, external_id="normal"), expect=201)

    worker()

    outage = Event.objects.get(external_id="outage")
    assert outage.evaluated is True and outage.evaluation_error == ""
    assert advice_of("outage") == advice_of("normal") != []
    assert Client().get("/healthz").status_code == 200
    assert PeriodicRun.objects.filter(name="evaluations-complete").count() == 1

    # Another pass in the same period enqueues nothing; a later one changes nothing.
    worker()
    assert PeriodicRun.objects.filter(name="evaluations-complete").count() == 1
    PeriodicRun.objects.all().delete()
    worker()
    assert advice_of("outage") == advice_of("normal")


def test_rerunning_the_evaluation_of_many_members_is_a_job_with_progress(client, pack, clinician, monkeypatch):
    monkeypatch.setattr(coaching_admin, "REEVALUATE_INLINE_MEMBERS", 2)
    for n in range(4):
        client.send(run(at=day(n), member=f"m-{n}", pain_during=7), expect=201)
    before = sorted(Advice.objects.values_list("pk", "rule_key"))
    selected = list(Event.objects.values_list("pk", flat=True))

    response = clinician.post(EVENTS, {"action": "reevaluate", "_selected_action": selected}, follow=True)

    text = response.content.decode()
    assert "Re-running the evaluation of 4 members in the background" in text
    job = Job.objects.get(kind="reevaluate")
    assert job.status == Job.Status.QUEUED and reverse("admin:rules_job_change", args=[job.pk]) in text
    worker()
    job.refresh_from_db()
    assert (job.status, job.done, job.total) == (Job.Status.DONE, 4, 4)
    assert job.result["members"] == 4 and job.result["failed"] == 0
    page = clinician.get(reverse("admin:rules_job_change", args=[job.pk])).content.decode()
    assert "4 of 4" in page and "advice created: 0" in page
    assert sorted(Advice.objects.values_list("pk", "rule_key")) == before  # no duplicates, nothing redone


def threshold_published(value: int) -> None:
    """A clinician's change that alters advice already given: "stop when it hurts" from ``value``."""
    rule = Rule.objects.get(key="pain-stop")
    spec = rule_spec(rule)
    spec["parameters"] = [{**p, "value": value} if p["name"] == "threshold" else p for p in spec["parameters"]]
    rule_save(spec=spec, rule=rule)
    ruleset_publish(comment=f"Threshold {value}")


def test_a_reevaluation_in_parts_gives_exactly_what_one_job_gives(pack):
    now = timezone.now()
    gyms = {"parts": gym_client("In parts"), "one": gym_client("In one job")}
    members = [f"m-8-{n}" for n in range(12)]
    for client in gyms.values():
        for history in properties.histories(8, members=12, events=(6, 14), now=now):
            client.history(*history)
    threshold_published(3)

    def started(name: str, parts: int) -> Job:
        pks = Member.objects.filter(gym=gyms[name].gym).values_list("pk", flat=True)
        return reevaluate_start({pk: now - dt.timedelta(days=400) for pk in pks}, parts=parts)

    whole, one = started("parts", 3), started("one", 1)
    assert whole.parts.count() == 3 and not one.parts.exists()
    worker()
    whole.refresh_from_db()
    one.refresh_from_db()
    assert whole.status == one.status == Job.Status.DONE
    assert whole.result == one.result and whole.result["members"] == 12
    assert whole.result["advice_created"] + whole.result["advice_withdrawn"] > 0  # the change mattered
    assert properties.advice_state(gyms["parts"], members) == properties.advice_state(gyms["one"], members)


def test_a_simulation_in_parts_gives_exactly_what_one_run_gives(pack, settings):
    now = timezone.now()
    client = gym_client("Simulated in parts")
    for history in properties.histories(9, members=12, events=(6, 14), now=now):
        client.history(*history)
    rule = Rule.objects.get(key="pain-stop")  # a draft that changes advice: threshold 3
    spec = rule_spec(rule)
    spec["parameters"] = [{**p, "value": 3} if p["name"] == "threshold" else p for p in spec["parameters"]]
    rule_save(spec=spec, rule=rule)
    alone = simulation.simulation_result_dump(
        simulation.simulation_run(simulation.simulation_prepare(days=400, now=now))
    )

    without_time = lambda result: {k: v for k, v in result.items() if k != "seconds"}  # noqa: E731
    # Three parts asked for; then parts of at most a quarter of the events each, however many workers.
    wholes = [simulation.simulation_start(days=400, now=now, parts=3)]
    settings.RULES_ENGINE = {**settings.RULES_ENGINE, "SIMULATION_PART_MAX_FACTS": alone["events"] // 4 + 1}
    wholes.append(simulation.simulation_start(days=400, now=now))
    assert [whole.parts.count() for whole in wholes] == [3, 4]
    worker()
    for whole in wholes:
        whole.refresh_from_db()
        assert whole.status == Job.Status.DONE and whole.done == whole.total == alone["events"]
        combined = simulation.simulation_result_dump(simulation.simulation_result(whole))
        assert json.loads(json.dumps(without_time(combined))) == json.loads(json.dumps(without_time(alone)))
    assert sum(rule["appear"] + rule["disappear"] + rule["change"] for rule in combined["rules"]) > 0
    assert len(combined["events_judged"]) > 0


def test_a_long_simulation_runs_on_a_worker_and_any_session_reads_its_progress(client, pack, clinician, monkeypatch):
    monkeypatch.setattr(simulation, "BACKGROUND_ABOVE", 1)
    for n in range(3):
        client.send(run(at=day(n), member=f"m-{n}", pain_during=6), expect=201)
    response = clinician.post(reverse("admin:rules_rule_simulate"), {"days": 365})
    assert response.status_code == 302
    job_id = re.search(r"job=([0-9a-f-]+)", response["Location"]).group(1)

    another = Client()  # another browser, as another web process would serve it
    another.force_login(clinician_ensure(username="pt-ben", password="another-long-password")[0])
    status_url = reverse("admin:rules_rule_simulate_status", args=[job_id])
    assert another.get(status_url).json()["status"] == "waiting for a worker"
    worker()
    assert another.get(status_url).json() == {
        "done": 3,
        "total": 3,
        "finished": True,
        "status": "finished",
        "error": "",
    }
    page = another.get(response["Location"]).content.decode()
    assert 'id="simulation-result"' in page and "3 events of 3 members" in page
