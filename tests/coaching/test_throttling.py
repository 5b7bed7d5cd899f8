"""A per-gym request limit, counted in a store every process shares (docs/deployment.md).

The limit is on by default (6000 requests a minute per gym; an array of events is one
request); every counted answer says where the gym stands (the IETF draft's RateLimit header
fields), and over the limit the answer is a JSON 429 with Retry-After. The counter is raised
atomically, so two processes counting at once are counted together, never over each other.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings

from coaching.api import throttling

from .conftest import EVENTS_URL, run

pytestmark = pytest.mark.django_db


def test_every_counted_answer_carries_ratelimit_headers_at_the_default_limit(client):
    first = client.get(EVENTS_URL)
    second = client.get(EVENTS_URL)
    assert first.status_code == second.status_code == 200
    assert first["RateLimit-Limit"] == "6000"
    assert first["RateLimit-Policy"] == "6000;w=60"
    assert int(first["RateLimit-Remaining"]) == 5999
    assert int(second["RateLimit-Remaining"]) == 5998
    assert 1 <= int(first["RateLimit-Reset"]) <= 60


def test_an_array_of_events_counts_as_one_request(client):
    before = int(client.get(EVENTS_URL)["RateLimit-Remaining"])
    response = client.send([run(), run(), run()], expect=200)
    assert int(response["RateLimit-Remaining"]) == before - 1


def test_gyms_are_counted_apart(client, other_client):
    client.get(EVENTS_URL)
    client.get(EVENTS_URL)
    assert other_client.get(EVENTS_URL)["RateLimit-Remaining"] == "5999"


@override_settings(REST_FRAMEWORK={"DEFAULT_THROTTLE_RATES": {"gym": "2/minute"}})
def test_over_the_limit_answers_json_429_with_retry_after_until_the_window_resets(client, monkeypatch):
    monkeypatch.setattr(
        throttling.GymRateThrottle, "timer", staticmethod(lambda: 1_000_040.0)
    )  # 40 s to go (windows start at 1_000_020)
    assert client.send(run(), expect=201)["RateLimit-Remaining"] == "1"
    assert client.get(EVENTS_URL)["RateLimit-Remaining"] == "0"
    response = client.send(run())
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    assert "throttled" in response.json()["detail"]
    assert response["Retry-After"] == response["RateLimit-Reset"] == "40"
    assert response["RateLimit-Remaining"] == "0"
    monkeypatch.setattr(throttling.GymRateThrottle, "timer", staticmethod(lambda: 1_000_080.0))  # the next minute
    assert client.get(EVENTS_URL).status_code == 200


def test_answers_without_a_gym_are_not_counted(db):
    from rest_framework.test import APIClient

    response = APIClient().get(EVENTS_URL)
    assert response.status_code == 401
    assert "RateLimit-Limit" not in response


# -- across processes --------------------------------------------------------------------------
HITS = 150
COUNTER = """
import sys, time
import django
django.setup()
from coaching.api.throttling import counter_hit
key, start = sys.argv[1], float(sys.argv[2])
time.sleep(max(start - time.time(), 0))
print(" ".join(str(counter_hit(key, 60)) for _ in range({hits})))
"""


def _database_url(tmp_path: Path) -> str:
    """The test database on PostgreSQL (its counter table exists); a fresh SQLite file otherwise."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.postgresql":
        return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"
    return f"sqlite:///{tmp_path / 'cache.sqlite3'}"


@pytest.mark.slow
@pytest.mark.skipif(bool(os.environ.get("CACHE_URL")), reason="tests the database cache")
def test_two_processes_counting_at_once_are_counted_together(tmp_path, django_db_setup):
    """Two processes raise one counter 150 times each, at the same moment: the counts they
    see are 1 to 300, each exactly once (Django's own incr loses about a third of them here)."""
    env = {**os.environ, "DATABASE_URL": _database_url(tmp_path), "DATABASE_CONN_MAX_AGE": "0"}
    python = [sys.executable, "-c"]
    if env["DATABASE_URL"].startswith("sqlite"):
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"], cwd=settings.BASE_DIR, env=env, check=True, timeout=180
        )
    key, start = f"test-{uuid.uuid4().hex}", time.time() + 3
    workers = [
        subprocess.Popen(
            [*python, COUNTER.format(hits=HITS), key, str(start)],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    counts = []
    for worker in workers:
        out, _ = worker.communicate(timeout=120)
        assert worker.returncode == 0
        counts.extend(int(n) for n in out.split())
    assert sorted(counts) == list(range(1, 2 * HITS + 1))
