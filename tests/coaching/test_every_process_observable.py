"""Every process of a host observable (docs/deployment.md): ``manage.py serve`` under
``LOG_FORMAT=json`` writes nothing but JSON lines (its own, gunicorn's, the queue workers'), its
deployment checks among them; a job a queue worker ran shows in the one ``/metrics`` of the host;
progress bars are drawn on a terminal only."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from prometheus_client.parser import text_string_to_metric_families

from coaching.management.commands.serve import MSG_WORKER_RESTART

from .conftest import T0, run
from .hosts import Host, answering, call, free_port

EVENTS = 25
IMPORT = """
import django, json
django.setup()
from coaching.imports import event_import_start
from coaching.models import Gym
lines = [json.dumps(dict(external_id=f"imp-{{n}}", member=f"m-{{n % 5}}", type="pain_report",
                         occurred_at="{at}", data=dict(pain=1))) for n in range({events})]
print(event_import_start(gym=Gym.objects.get(), name="history.jsonl", content="\\n".join(lines).encode(),
                         format="jsonl").job_id)
"""
JOB_STATUS = """
import django
django.setup()
from rules.models import Job
print(Job.objects.get(pk="{job}").status)
"""


def samples(text: str) -> list:
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def total(found: list, name: str, **labels: str) -> float:
    return sum(s.value for s in found if s.name == name and labels.items() <= s.labels.items())


@pytest.mark.slow
def test_serve_logs_only_json_and_one_scrape_counts_what_a_queue_worker_did(tmp_path: Path):
    host = Host.make(tmp_path)
    out, err = (tmp_path / "serve.out").open("w+"), (tmp_path / "serve.err").open("w+")
    port = free_port()
    serve = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port), "--web-concurrency", "1", "--queue-workers", "1"],
        cwd=settings.BASE_DIR,
        env={
            **host.env,
            "LOG_FORMAT": "json",
            "REQUEST_LOG_LEVEL": "INFO",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        },
        stdout=out,
        stderr=err,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        answering(url, serve)
        job = host.python(IMPORT.format(at=T0.isoformat(), events=EVENTS)).strip()
        deadline = time.monotonic() + 120
        while host.python(JOB_STATUS.format(job=job)).strip() != "done":
            assert time.monotonic() < deadline, "the queue worker did not run the import"
            time.sleep(0.5)
        assert call(f"{url}/nowhere").status == 404
        assert call(f"{url}/api/v1/events/", key=host.key, body=run(member="m-web")).status == 201

        found = samples(call(f"{url}/metrics").body.decode())
        assert total(found, "rlbp_jobs_total", kind="import-events", outcome="done") == 1
        assert total(found, "rlbp_events_imported_total", outcome="created") == EVENTS
        assert total(found, "rlbp_events_stored_total") == EVENTS + 1  # the worker's and the web's
        assert total(found, "rlbp_queue_waiting") == 0
        assert any(s.name == "rlbp_queue_oldest_wait_seconds" for s in found)

        # A queue worker that dies is started again, and serve says so in JSON too.
        worker = int(re.search(r"Starting worker worker_id=\S+-(\d+)", Path(err.name).read_text()).group(1))
        os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while "starting another" not in Path(err.name).read_text():
            assert time.monotonic() < deadline, "the dead queue worker was not replaced"
            time.sleep(0.2)
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)

    lines = [line for text in (Path(out.name).read_text(), Path(err.name).read_text()) for line in text.splitlines()]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}")
    loggers = {record["logger"] for record in records}
    assert {"coaching.serve", "gunicorn.error", "coaching.requests", "django_tasks_db"} <= loggers, loggers
    messages = [record["message"] for record in records]
    assert any(message.startswith("check --deploy: security.") for message in messages)  # no HTTPS settings here
    assert any(message == MSG_WORKER_RESTART.format(pid=worker, code=-9) for message in messages), messages


def test_progress_bars_are_drawn_on_a_terminal_only(client, tmp_path: Path):
    client.send(run(), expect=201)
    err = io.StringIO()
    call_command("reevaluate", stdout=io.StringIO(), stderr=err)
    history = tmp_path / "history.jsonl"
    history.write_text(json.dumps(run(member="m-2")) + "\n")
    call_command("importevents", str(history), "--gym", "Riverside Runners", stdout=io.StringIO(), stderr=err)
    assert err.getvalue() == ""  # a log file, not a terminal: no bar
