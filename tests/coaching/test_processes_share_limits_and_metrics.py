"""Served as in production by several gunicorn worker processes (docs/deployment.md): the
per-gym limit counts the requests of every worker together, and one scrape of ``/metrics``
adds up the figures of all workers (PROMETHEUS_MULTIPROC_DIR, config/gunicorn.py).

The server runs on its own SQLite file (``make run``'s database), made by ``migrate`` as
``make setup`` makes it, which also proves that ``migrate`` makes the cache table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from .conftest import T0
from .test_concurrency import free_port

pytestmark = pytest.mark.slow

LIMIT = 60
REQUESTS = 100
GYM_KEY = """
import django
django.setup()
from coaching.services import gym_create
print(gym_create(name="Scale-out Gym")[1])
"""


def call(url: str, key: str = "", body: object = None) -> int:
    request = urllib.request.Request(url, method="GET" if body is None else "POST")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
        request.data = json.dumps(body).encode()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_two_workers_share_the_limit_and_the_metrics(tmp_path: Path):
    multiproc = tmp_path / "metrics"
    multiproc.mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "scale-out-test-" + "k" * 40,
        "API_THROTTLE_RATE": f"{LIMIT}/day",  # a window the test will not straddle (but at midnight UTC)
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        "REQUEST_LOG_LEVEL": "WARNING",
    }
    env.pop("CACHE_URL", None)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=settings.BASE_DIR, env=env, check=True, timeout=120)
    subprocess.run(
        [*manage, "installpack"], cwd=settings.BASE_DIR, env=env, check=True, timeout=120, capture_output=True
    )
    key = subprocess.run(
        [sys.executable, "-c", GYM_KEY], cwd=settings.BASE_DIR, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "config.wsgi", "--bind", f"127.0.0.1:{port}"]
        + ["--workers", "2", "--threads", "4", "--log-level", "warning"],
        cwd=settings.BASE_DIR,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if call(f"{url}/healthz") == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)

        def one(n: int) -> int:
            if n % 2:
                return call(f"{url}/api/v1/events/", key)
            event = {
                "external_id": f"e-{n}",
                "member": f"m-{n % 5}",
                "type": "pain_report",
                "occurred_at": T0.isoformat(),
                "data": {"pain": 1},
            }
            return call(f"{url}/api/v1/events/", key, event)

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = Counter(pool.map(one, range(REQUESTS)))
        assert statuses[429] == REQUESTS - LIMIT, statuses  # counted together: exactly the limit passed
        assert statuses[200] + statuses[201] == LIMIT, statuses

        with urllib.request.urlopen(f"{url}/metrics", timeout=60) as response:
            text = response.read().decode()
    finally:
        server.terminate()
        server.wait(timeout=30)

    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]

    def total(name: str, **labels: str) -> float:
        return sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())

    # Both workers served requests, and the scrape, answered by one of them, counts them all.
    workers = {path.stem.rsplit("_", 1)[1] for path in multiproc.glob("counter_*.db")}
    assert len(workers) == 2, workers
    assert total("rlbp_http_requests_total", view="api:events") == REQUESTS
    assert total("rlbp_http_requests_total", view="api:events", status="429") == REQUESTS - LIMIT
    assert total("rlbp_events_stored_total", type="pain_report") == statuses[201]
    assert total("rlbp_evaluation_seconds_count") == statuses[201]
    assert total("rlbp_evaluations_pending") == 0
