"""Logs an operator can search (docs/deployment.md, "Logs"): with ``LOG_FORMAT=json`` one JSON
object per line, each carrying its request's id (the client's ``X-Request-ID`` or a new one,
echoed in the answer) and the gym, member, event and ruleset version where known; one line
per request on the ``coaching.requests`` logger."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from coaching.logs import JsonFormatter, LogContextFilter

from .conftest import ENGINE_DOWN, EVENTS_URL, engine_break, run

pytestmark = pytest.mark.django_db


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What the console handler of ``LOG_FORMAT=json`` writes, at DEBUG, for every logger."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(LogContextFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_request_logs_one_json_line_with_its_id_gym_and_timing(client, pack, json_lines):
    response = client.post(EVENTS_URL, run(external_id="garmin-1"), format="json", headers={"X-Request-ID": "req-42"})
    assert response.status_code == 201
    assert response["X-Request-ID"] == "req-42"
    [line] = [r for r in records(json_lines) if r["logger"] == "coaching.requests"]
    assert line["level"] == "INFO"
    assert line["message"].startswith("POST /api/v1/events/ 201 ")
    assert dt.datetime.fromisoformat(line["timestamp"]).utcoffset() == dt.timedelta(0)
    assert line["request_id"] == "req-42"
    assert line["gym"] == client.gym.pk
    assert (line["method"], line["path"], line["status"]) == ("POST", EVENTS_URL, 201)
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] > 0


def test_lines_logged_while_judging_name_the_member_event_and_ruleset_version(client, pack, json_lines):
    client.post(EVENTS_URL, run(member="m-7", external_id="garmin-7"), format="json", headers={"X-Request-ID": "req-7"})
    [judged] = [r for r in records(json_lines) if r["message"].startswith("Judged ")]
    assert judged["request_id"] == "req-7"
    assert (judged["gym"], judged["member"], judged["event"]) == (client.gym.pk, "m-7", "garmin-7")
    assert isinstance(judged["ruleset_version"], int)


def test_a_failed_evaluation_is_logged_with_its_context(client, pack, json_lines, monkeypatch):
    engine_break(monkeypatch)
    client.send(run(member="m-8", external_id="garmin-8"), expect=201)
    [failed] = [r for r in records(json_lines) if r["level"] == "ERROR"]
    assert failed["logger"] == "coaching.evaluation"
    assert (failed["member"], failed["event"]) == ("m-8", "garmin-8")
    assert ENGINE_DOWN in failed["exc_info"]
    assert len(failed["request_id"]) == 32  # none was sent: a new one


def test_an_unusable_request_id_is_replaced(client):
    response = client.get(EVENTS_URL, headers={"X-Request-ID": "no spaces or\nnewlines"})
    assert response["X-Request-ID"] != "no spaces or\nnewlines"
    assert len(response["X-Request-ID"]) == 32


def test_plain_text_lines_carry_the_context_too(client, caplog):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(LogContextFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s%(context)s"))
    logging.getLogger("coaching.requests").addHandler(handler)
    try:
        client.get(EVENTS_URL, headers={"X-Request-ID": "req-9"})
    finally:
        logging.getLogger("coaching.requests").removeHandler(handler)
    assert stream.getvalue() == (
        f"INFO coaching.requests GET /api/v1/events/ 200 {stream.getvalue().split()[5]} request_id=req-9 "
        f"gym={client.gym.pk}\n"
    )
