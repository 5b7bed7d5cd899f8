"""Health that tells the truth (docs/api.md): a database that cannot be written makes
/healthz 503 "degraded" on SQLite as on PostgreSQL, and the API's 503 names the cause (read-only,
unreachable, busy) with a Retry-After that fits it. (The read-only database of the test suite, on
SQLite and PostgreSQL alike, is in test_api_hardening.py.)"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError

from coaching import services
from coaching.internal.db.database import DATABASE_BUSY, DATABASE_READ_ONLY, DATABASE_UNREACHABLE, RETRY_AFTER
from config.version import VERSION

from .conftest import EVENTS_URL, run
from .hosts import Host, free_port

# Asked of the product in a process of its own: /healthz, then an event posted with the gym's key.
ASK = """
import django, json, os, subprocess
django.setup()
from django.db import connections
from django.test import Client

def answers(n=iter(range(3))):
    health = Client().get("/healthz")
    event = {**json.loads(os.environ["EVENT"]), "external_id": f"asked-{next(n)}"}  # a new event each time
    posted = Client().post("/api/v1/events/", event, content_type="application/json",
                           HTTP_AUTHORIZATION="Bearer " + os.environ["KEY"])
    return [[health.status_code, health.json(), health.get("Retry-After")],
            [posted.status_code, posted.json(), posted.get("Retry-After")]]

before = answers()
freeze = os.environ.get("FREEZE")
if freeze:
    subprocess.run(freeze, shell=True, check=True)
try:
    still_connected = answers()  # the connection opened before the file became read-only
    connections.close_all()
    reconnected = answers()
finally:
    if os.environ.get("THAW"):
        subprocess.run(os.environ["THAW"], shell=True, check=True)
print(json.dumps([before, still_connected, reconnected]))
"""


def asked(host: Host, **env: str) -> Any:
    return json.loads(host.python(ASK, EVENT=json.dumps(run()), KEY=host.key, **env).strip().splitlines()[-1])


def read_only_commands(path: Path) -> tuple[str, str]:
    """Shell commands making ``path`` read-only and writable again (root ignores a file's mode)."""
    if os.geteuid() != 0:
        return f"chmod a-w '{path}'", f"chmod u+w '{path}'"
    probe = path.with_name("probe")
    probe.write_text("")
    can = subprocess.run(["chattr", "+i", str(probe)], capture_output=True).returncode == 0
    subprocess.run(["chattr", "-i", str(probe)], capture_output=True)
    if not can:
        pytest.skip("this file system cannot make a file immutable (chattr), and root writes any file")
    return f"chattr +i '{path}'", f"chattr -i '{path}'"


@pytest.mark.slow
def test_a_read_only_sqlite_file_makes_healthz_degraded_and_the_api_say_read_only(tmp_path):
    host = Host.make(tmp_path)
    freeze, thaw = read_only_commands(host.database)
    before, still_connected, reconnected = asked(host, FREEZE=freeze, THAW=thaw)

    assert before[0][:2] == [200, {"status": "ok", "database": "ok", "ruleset_version": 1, "version": VERSION}]
    assert before[1][0] == 201
    degraded = {
        "status": "degraded",
        "database": "read-only",
        "detail": DATABASE_READ_ONLY,
        "ruleset_version": None,
        "version": VERSION,
    }
    retry = str(RETRY_AFTER["read-only"])
    # Even while its connection could still write into the WAL file, health says the truth.
    assert still_connected[0] == [503, degraded, retry]
    assert reconnected[0] == [503, degraded, retry]
    assert reconnected[1] == [503, {"detail": DATABASE_READ_ONLY}, retry]


@pytest.mark.parametrize(
    "database_url",
    [
        pytest.param("postgres://nobody:nothing@127.0.0.1:{port}/rlbp", id="postgresql"),
        pytest.param("sqlite:////nonexistent-directory/db.sqlite3", id="sqlite"),
    ],
)
def test_an_unreachable_database_makes_healthz_degraded_and_the_api_say_unreachable(tmp_path, database_url):
    host = Host(directory=tmp_path, env=dict(os.environ), key="no-key")
    host.env.update(
        DATABASE_URL=database_url.format(port=free_port()),  # nothing listens there
        DJANGO_SECRET_KEY="host-test-" + "k" * 50,
    )
    health, posted = asked(host)[0]
    retry = str(RETRY_AFTER["unreachable"])
    assert health[0] == 503 and health[2] == retry
    assert health[1] == {
        "status": "degraded",
        "database": "error",
        "detail": DATABASE_UNREACHABLE,
        "ruleset_version": None,
        "version": VERSION,
    }
    assert posted == [503, {"detail": DATABASE_UNREACHABLE}, retry]


@pytest.mark.django_db
def test_a_busy_database_answers_busy_with_a_short_retry_after(client, monkeypatch):
    def locked(**kwargs: Any) -> Any:
        raise OperationalError("database is locked")

    monkeypatch.setattr(services, "event_ingest", locked)
    answer = client.post(EVENTS_URL, run(), format="json")
    assert answer.status_code == 503 and answer["Retry-After"] == str(RETRY_AFTER["busy"])
    assert answer.json() == {"detail": DATABASE_BUSY}
