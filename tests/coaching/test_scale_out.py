"""Production shape on PostgreSQL: ``manage.py serve`` (what ``make serve`` runs) with 2 web
processes and 2 task-queue workers.

- Many gym clients posting at once in random order, while a clinician's simulation runs on a
  worker, end with the advice of posting one event at a time in time order, and the
  simulation's progress is read through the web processes.
- Processes killed with SIGKILL (web processes during a batch, a queue worker during a
  simulation) lose no acknowledged event: after the restart, every one is stored and judged
  once without an operator, and the simulation, marked cut off, can be started again.

Skipped on SQLite (see test_concurrency.py); CI runs them with ``make test-postgres``.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

import psutil
import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from coaching import services
from coaching.jobs import reevaluate_start
from coaching.models import Advice, Event, Member
from coaching.services import clinician_ensure, events_reevaluate
from rules import simulation
from rules.models import Job, Rule
from rules.selectors import rule_spec
from rules.services import rule_save, ruleset_publish

from .posting import events_post
from .properties import advice_state, gym_client, judging_order, member_history
from .test_concurrency import free_port, wait_until_answering

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="needs PostgreSQL (several processes); CI: make test-postgres",
    ),
    pytest.mark.django_db(transaction=True),
]

MEMBERS = 100
EVENTS_EACH = 20
CLIENTS = 8
RATE_LIMIT = 1_000_000


@dataclass
class Served:
    url: str
    process: subprocess.Popen

    def _direct(self, word: str) -> list[psutil.Process]:
        return [p for p in psutil.Process(self.process.pid).children() if word in " ".join(p.cmdline())]

    def web_workers(self) -> list[psutil.Process]:
        """gunicorn's worker processes (its master restarts them)."""
        return [worker for master in self._direct("gunicorn") for worker in master.children()]

    def queue_workers(self) -> list[psutil.Process]:
        return self._direct("manage.py worker")


@contextmanager
def serving(*, web: int, queue: int) -> Iterator[Served]:
    """``manage.py serve`` on the test database; yields its URL once it answers."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{quote(db['USER'])}:{quote(db['PASSWORD'])}@{db['HOST'] or 'localhost'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "DATABASE_CONN_MAX_AGE": "0",  # no connection outlives a request, so the test database can be dropped
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,  # the test's sessions must hold there too
        # Quick clocks, so that the test need not wait minutes for the periodic jobs.
        "JOBS_HEARTBEAT_SECONDS": "1",
        "JOBS_STALE_SECONDS": "5",
        "JOBS_SWEEP_SECONDS": "2",
        "EVALUATIONS_COMPLETE_SECONDS": "2",
        "API_THROTTLE_RATE": f"{RATE_LIMIT}/day",  # counted, never reached (a day's window: no reset mid-test)
    }
    port = free_port()
    command = [sys.executable, "manage.py", "serve", "--port", str(port)]
    command += ["--web-concurrency", str(web), "--queue-workers", str(queue)]
    process = subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(url, process, seconds=90, what="manage.py serve")
        yield Served(url, process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            for child in psutil.Process(process.pid).children(recursive=True):
                child.kill()
            process.kill()


def histories(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    start = timezone.now() - dt.timedelta(days=60)
    return [p for n in range(MEMBERS) for p in member_history(rng, f"m-{n}", start=start, events=EVENTS_EACH)]


def clinician_cookie() -> str:
    """A clinician's session, as their browser holds it (sessions live in the database)."""
    browser = Client()
    browser.force_login(clinician_ensure(username="pt-anna", password="a-long-password")[0])
    return browser.cookies[settings.SESSION_COOKIE_NAME].value


def get_json(url: str, cookie: str) -> dict[str, Any]:
    request = urllib.request.Request(url, headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def post_array(url: str, key: str, payloads: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """An array of events; None when the connection broke before an answer (not acknowledged)."""
    request = urllib.request.Request(
        f"{url}/api/v1/events/",
        data=json.dumps(payloads).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None
    except urllib.error.HTTPError as error:
        if error.code >= 500:
            return None
        raise


def wait_for(condition: Any, *, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds:.0f} s"
        time.sleep(0.2)


def test_many_clients_on_two_web_processes_and_two_workers_give_the_sequential_advice(pack):
    payloads = histories(seed=8)
    sequential, racing = gym_client("One at a time"), gym_client("Eight at once")
    for payload in judging_order(payloads):
        sequential.send(payload, expect=201)

    context = multiprocessing.get_context("spawn")  # a fork would share the test's database connection
    shuffled = payloads[:]
    random.Random(2).shuffle(shuffled)
    cookie = clinician_cookie()
    with serving(web=2, queue=2) as served:
        job = simulation.simulation_start(days=365)  # what the admin's Simulate button does
        start, answers = context.Barrier(CLIENTS), context.Queue()
        clients = [
            context.Process(target=events_post, args=(served.url, racing.key, shuffled[n::CLIENTS], start, answers))
            for n in range(CLIENTS)
        ]
        for client in clients:
            client.start()
        status_url = served.url + reverse("admin:rules_rule_simulate_status", args=[job.pk])
        seen = [get_json(status_url, cookie)]
        received = []
        while len(received) < len(payloads):
            received.append(answers.get(timeout=600))
            if len(received) % 100 == 0:
                seen.append(get_json(status_url, cookie))
        for client in clients:
            client.join(timeout=60)
            assert client.exitcode == 0
        wait_for(lambda: get_json(status_url, cookie)["finished"], seconds=120, what="the simulation")
        seen.append(get_json(status_url, cookie))
        # Both web processes counted every request of the gym into one shared counter.
        request = urllib.request.Request(f"{served.url}/api/v1/events/?page_size=1")
        request.add_header("Authorization", f"Bearer {racing.key}")
        with urllib.request.urlopen(request, timeout=30) as response:
            remaining = int(response.headers["RateLimit-Remaining"])
        assert remaining == RATE_LIMIT - len(payloads) - 1

    assert sorted(status for _, status in received) == [201] * len(payloads)
    events = racing.gym.events
    assert events.count() == len(payloads) and not events.filter(evaluated=False).exists()
    members = [f"m-{n}" for n in range(MEMBERS)]
    assert advice_state(racing, members) == advice_state(sequential, members)
    # The simulation ran on a worker while the gyms posted; its progress came through the web.
    final = seen[-1]
    assert final["finished"] and final["error"] == "" and final["done"] == final["total"] > 0
    assert Job.objects.get(pk=job.pk).status == Job.Status.DONE


def test_a_reevaluation_spread_over_two_workers_gives_exactly_the_single_process_result(pack):
    payloads = histories(seed=10)
    spread, single = gym_client("Spread"), gym_client("Single")
    for client in (spread, single):
        for payload in judging_order(payloads):
            client.send(payload, expect=201)
    rule = Rule.objects.get(key="pain-stop")
    spec = rule_spec(rule)
    spec["parameters"] = [{**p, "value": 3} if p["name"] == "threshold" else p for p in spec["parameters"]]
    rule_save(spec=spec, rule=rule)
    ruleset_publish(comment="Threshold 3")
    since = timezone.now() - dt.timedelta(days=400)

    def starts(client: Any) -> dict[int, dt.datetime]:
        return {pk: since for pk in Member.objects.filter(gym=client.gym).values_list("pk", flat=True)}

    alone = services.ReevaluationResult()
    for pk in starts(single):
        result = events_reevaluate(member=Member.objects.get(pk=pk), since=since)
        for name, value in asdict(result).items():
            setattr(alone, name, getattr(alone, name) + value)
    with serving(web=1, queue=2) as served:
        whole = reevaluate_start(starts(spread), parts=2)
        wait_for(lambda: Job.objects.get(pk=whole.pk).status == Job.Status.DONE, seconds=300, what="the re-evaluation")
        pids = {p.pid for p in served.queue_workers()}
    whole.refresh_from_db()
    assert whole.result == asdict(alone) and whole.result["advice_withdrawn"] > 0
    members = [f"m-{n}" for n in range(MEMBERS)]
    assert advice_state(spread, members) == advice_state(single, members)
    assert len(pids) == 2


def test_a_simulation_spread_over_two_workers_gives_exactly_the_single_run(pack):
    client = gym_client("Simulated on two workers")
    for payload in judging_order(histories(seed=11)):
        client.send(payload, expect=201)
    rule = Rule.objects.get(key="pain-stop")  # the draft: threshold 3, not published
    spec = rule_spec(rule)
    spec["parameters"] = [{**p, "value": 3} if p["name"] == "threshold" else p for p in spec["parameters"]]
    rule_save(spec=spec, rule=rule)
    now = timezone.now()
    alone = simulation.simulation_result_dump(
        simulation.simulation_run(simulation.simulation_prepare(days=365, now=now))
    )
    with serving(web=1, queue=2):
        whole = simulation.simulation_start(days=365, now=now, parts=2)
        wait_for(lambda: Job.objects.get(pk=whole.pk).status == Job.Status.DONE, seconds=300, what="the simulation")
    whole.refresh_from_db()
    assert whole.parts.filter(status=Job.Status.DONE).count() == 2
    without_time = lambda result: {k: v for k, v in result.items() if k != "seconds"}  # noqa: E731
    combined = simulation.simulation_result_dump(simulation.simulation_result(whole))
    assert json.loads(json.dumps(without_time(combined))) == json.loads(json.dumps(without_time(alone)))
    assert sum(rule["appear"] + rule["disappear"] + rule["change"] for rule in combined["rules"]) > 0
    assert len(combined["events_judged"]) > 0


def test_killed_processes_lose_no_acknowledged_event_and_a_cut_off_simulation_runs_again(pack):
    payloads = histories(seed=9)
    racing = gym_client("Killed under load")
    arrays = [payloads[n : n + 250] for n in range(0, len(payloads), 250)]
    acknowledged: dict[str, int] = {}
    killed_web = threading.Event()

    with serving(web=2, queue=1) as served:

        def gym() -> None:
            """A gym posting its arrays, sending an array again when no answer came back."""
            for array in arrays:
                for _attempt in range(20):
                    answer = post_array(served.url, racing.key, array)
                    if answer is not None:
                        for item, payload in zip(answer, array, strict=True):
                            acknowledged[payload["external_id"]] = item["status"]
                        break
                    time.sleep(1)

        posting = threading.Thread(target=gym)
        posting.start()
        # SIGKILL every web process while the second array is being judged.
        wait_for(lambda: len(acknowledged) >= 250, seconds=300, what="the first array")
        time.sleep(0.3)
        for process in served.web_workers():
            process.send_signal(signal.SIGKILL)
        killed_web.set()
        posting.join(timeout=900)
        assert not posting.is_alive()

        # A queue worker killed during a simulation: the job is cut off, and can run again.
        cut_off = None
        for _attempt in range(5):
            job = simulation.simulation_start(days=365)
            wait_for(
                lambda job=job: Job.objects.get(pk=job.pk).status != Job.Status.QUEUED, seconds=60, what="a worker"
            )
            for process in served.queue_workers():
                process.send_signal(signal.SIGKILL)
            if Job.objects.get(pk=job.pk).status == Job.Status.RUNNING:
                cut_off = job
                break  # caught mid-run (a quick simulation may finish first: try again)
        assert cut_off is not None, "no simulation was caught running"
        wait_for(
            lambda: Job.objects.get(pk=cut_off.pk).status == Job.Status.CUT_OFF, seconds=60, what="the cut-off mark"
        )
        again = simulation.simulation_start(days=365)
        wait_for(lambda: Job.objects.get(pk=again.pk).finished, seconds=120, what="the second simulation")
        assert Job.objects.get(pk=again.pk).status == Job.Status.DONE

        # Without an operator: every stored event gets judged (the periodic job completes what was cut off).
        wait_for(lambda: not Event.objects.filter(evaluated=False).exists(), seconds=60, what="the evaluations")

    assert killed_web.is_set()
    assert set(acknowledged) == {p["external_id"] for p in payloads}
    assert set(acknowledged.values()) <= {200, 201}
    stored = racing.gym.events
    assert stored.count() == len(payloads)
    assert sorted(stored.values_list("external_id", flat=True)) == sorted(acknowledged)
    assert advice_state(racing, [f"m-{n}" for n in range(MEMBERS)])  # no rule's advice twice on one event
    # The advice is what judging the stored events from scratch gives: nothing to add or withdraw.
    rejudged = events_reevaluate(gym=racing.gym)
    assert (rejudged.advice_created, rejudged.advice_withdrawn, rejudged.failed) == (0, 0, 0)
    assert Advice.objects.filter(gym=racing.gym, withdrawn_at__isnull=True).exists()
