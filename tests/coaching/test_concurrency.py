"""Evaluations of one member never overlap (docs/advice.md), also across processes, so
posting a member's events from several processes at once ends with the advice of posting them
one at a time in time order.

The real thing needs PostgreSQL (a row lock per member across processes): a gunicorn with
4 worker processes serves the test database, and 4 client processes post one member's 40
events at once, in random order, a few of them from two clients at the same time. CI runs
it with ``make test-postgres``. It is skipped on SQLite: the test database there is an
in-memory database shared between connections, which refuses a second writer at once
("database table is locked") instead of making it wait as the file database of
``make run`` does, so it cannot stand in for the product's behaviour.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import random
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from coaching.models import Advice, Event

from .posting import events_post
from .properties import advice_state, gym_client, judging_order, member_history

pytestmark = pytest.mark.slow

ON_POSTGRES = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
CLIENTS = 4
EVENTS = 40
TWICE = 3  # events each client also sends that another client sends too
ROUNDS = 3


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_answering(url: str, process: subprocess.Popen, *, seconds: float, what: str) -> None:
    """Wait until the server at ``url`` answers ``/healthz`` (503 "degraded" is an answer too)."""
    deadline = time.monotonic() + seconds
    while True:
        assert process.poll() is None, f"{what} stopped"
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=5).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            assert time.monotonic() < deadline, f"{what} did not answer within {seconds:.0f} s"
            time.sleep(0.2)


@contextmanager
def served(*, workers: int) -> Iterator[str]:
    """A gunicorn with ``workers`` processes serving the test database; yields its URL."""
    db = connection.settings_dict
    database_url = (
        f"postgres://{quote(db['USER'])}:{quote(db['PASSWORD'])}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/"
        f"{db['NAME']}"
    )
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DATABASE_CONN_MAX_AGE": "0",  # no connection outlives a request, so the test database can be dropped
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "concurrency-test-" + "k" * 40,
    }
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
        + ["--timeout", "120", "--log-level", "warning"],
        cwd=settings.BASE_DIR,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(url, server, seconds=60, what="gunicorn")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def one_members_events(member: str, *, seed: int) -> list[dict[str, Any]]:
    return member_history(random.Random(seed), member, start=timezone.now() - dt.timedelta(days=100), events=EVENTS)


def shares(payloads: list[dict[str, Any]], rng: random.Random) -> list[list[dict[str, Any]]]:
    """The events dealt to the clients in random order, with a few of them dealt to two clients."""
    shuffled = payloads[:]
    rng.shuffle(shuffled)
    dealt = [shuffled[n::CLIENTS] for n in range(CLIENTS)]
    for n, share in enumerate(dealt):
        share.extend(rng.sample(dealt[(n + 1) % CLIENTS][: EVENTS // CLIENTS], TWICE))
        rng.shuffle(share)
    return dealt


def assert_each_event_stored_once(answers: list[tuple[str, int]], events: QuerySet[Event]) -> None:
    """Each event answered 201 once and 200 to the other client; stored once and evaluated."""
    created = Counter(external_id for external_id, status in answers if status == 201)
    assert set(created.values()) == {1} and len(created) == EVENTS, answers
    assert {status for _, status in answers} <= {200, 201}, answers
    assert events.count() == EVENTS
    assert list(events.exclude(evaluated=True, evaluation_error="")) == []


@pytest.mark.skipif(not ON_POSTGRES, reason="needs PostgreSQL (row locks across processes); CI: make test-postgres")
@pytest.mark.django_db(transaction=True)
def test_four_processes_posting_one_members_events_at_once_give_the_sequential_advice(pack):
    sequential, racing = gym_client("One at a time"), gym_client("Four at once")
    context = multiprocessing.get_context("spawn")  # a fork would share the test's database connection
    with served(workers=CLIENTS) as url:
        for number in range(ROUNDS):  # a member per round: overlaps differ from one round to the next
            member = f"m-{number}"
            payloads = one_members_events(member, seed=number)
            for payload in judging_order(payloads):
                sequential.send(payload, expect=201)

            start, answers = context.Barrier(CLIENTS), context.Queue()
            dealt = shares(payloads, random.Random(number))
            clients = [
                context.Process(target=events_post, args=(url, racing.key, share, start, answers)) for share in dealt
            ]
            for client in clients:
                client.start()
            received = [answers.get(timeout=300) for _ in range(sum(len(share) for share in dealt))]
            for client in clients:
                client.join(timeout=60)
                assert client.exitcode == 0

            assert_each_event_stored_once(received, racing.gym.events.filter(member__external_id=member))
            expected = advice_state(sequential, [member])
            assert advice_state(racing, [member]) == expected
            stored = Advice.objects.filter(gym=racing.gym, member__external_id=member, withdrawn_at__isnull=True)
            assert stored.count() == len(expected[member]["advice"])
