"""A backup restores into an empty database and works (docs/deployment.md, Backups): on
PostgreSQL, ``pg_dump --format=custom`` of a product database, ``pg_restore --clean --if-exists
--no-owner`` into a new, empty one, and every table holds the same number of rows. Runs where
the suite runs on PostgreSQL (CI: make test-postgres)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from urllib.parse import quote

import pytest
from django.db import connection

from .conftest import T0, pain, run
from .hosts import Host

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

EVENTS = """
import django, json
django.setup()
from coaching.models import Gym
from coaching.services import event_ingest
for payload in json.loads('{events}'):
    assert event_ingest(gym=Gym.objects.get(), payload=payload).status == 201
"""
COUNTS = """
import django, json
django.setup()
from django.db import connection
with connection.cursor() as cursor:
    tables = connection.introspection.table_names(cursor)
    counts = {}
    for table in tables:
        cursor.execute(f'SELECT count(*) FROM "{table}"')
        counts[table] = cursor.fetchone()[0]
print(json.dumps(counts))
"""
HEALTH = """
import django
django.setup()
from django.test import Client
print(Client().get("/healthz").status_code)
"""


def _url(name: str) -> str:
    db = connection.settings_dict
    return (
        f"postgres://{quote(db['USER'])}:{quote(db['PASSWORD'])}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/"
        f"{name}"
    )


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(_url("postgres"), autocommit=True) as admin:
        admin.execute(sql)


@pytest.fixture
def databases() -> tuple[str, str]:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only (CI: make test-postgres)")
    if not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        pytest.skip("pg_dump and pg_restore are not installed")
    names = (f"rlbp_restore_from_{os.getpid()}", f"rlbp_restore_into_{os.getpid()}")
    for name in names:
        _admin(f'DROP DATABASE IF EXISTS "{name}"')
        _admin(f'CREATE DATABASE "{name}"')
    yield names
    for name in names:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_dump_restores_into_an_empty_database_with_the_same_rows(databases, tmp_path):
    source, target = databases
    host = Host.make(tmp_path, database_url=_url(source), DATABASE_CONN_MAX_AGE="0")
    events = [run(external_id="r-1", pain_during=6), pain(at=T0, external_id="p-1", pain=3), run(member="m-2")]
    host.python(EVENTS.format(events=json.dumps(events)))
    dump = tmp_path / "rlbp.dump"
    subprocess.run(["pg_dump", "--format=custom", f"--file={dump}", _url(source)], check=True, timeout=300)

    restored = subprocess.run(
        ["pg_restore", "--clean", "--if-exists", "--no-owner", f"--dbname={_url(target)}", str(dump)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert restored.returncode == 0, restored.stderr  # no "errors ignored on restore"

    before = json.loads(host.python(COUNTS).strip().splitlines()[-1])
    after = json.loads(host.python(COUNTS, DATABASE_URL=_url(target)).strip().splitlines()[-1])
    assert after == before
    assert before["coaching_event"] == 3 and before["rules_rulesetversion"] == 1
    # The restored database is the product's: nothing to migrate, and it takes writes.
    host.manage("migrate", "--check", DATABASE_URL=_url(target))
    assert host.python(HEALTH, DATABASE_URL=_url(target)).strip().splitlines()[-1] == "200"
