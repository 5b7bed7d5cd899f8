"""Parsing edges and error bodies: a number too small for a float is a bad value, not 0.0; "not
before 1970" compares instants; deeply nested JSON in an imported file is a bad line; what Django
answers outside any view is JSON under /api/ and words a clinician reads in the admin."""

from __future__ import annotations

import html
import io
import json

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from coaching import validation
from coaching.models import Event
from config.errors import BAD_REQUEST, FORM_TOO_LARGE

from .conftest import EVENTS_URL, run

pytestmark = pytest.mark.django_db


def post_raw(client, text: str):
    return client.post(EVENTS_URL, data=text, content_type="application/json")


def raw_run(distance: str, **changes) -> str:
    """A run as JSON text, its distance written exactly as given (no float in between)."""
    return json.dumps({**run(**changes), "external_id": f"d-{distance}"}).replace(
        '"distance_km": 3', f'"distance_km": {distance}'
    )


def test_a_distance_too_small_for_a_float_is_refused_not_stored_as_zero(client, pack):
    answer = post_raw(client, raw_run("1e-400"))
    assert answer.status_code == 400, answer.content
    assert answer.json() == {"errors": {"data.distance_km": [validation.NUMBER_UNDERFLOW.format(value="1e-400")]}}
    assert not Event.objects.exists()
    # In an array, only that item; zero written any way, and tiny numbers a float holds, pass.
    batch = client.post(
        EVENTS_URL, data=f"[{raw_run('1e-400')}, {raw_run('0.0e-400')}]", content_type="application/json"
    )
    assert [item["status"] for item in batch.json()] == [400, 201]
    assert post_raw(client, raw_run("1e-300")).status_code == 201
    assert sorted(Event.objects.values_list("data__distance_km", flat=True)) == [0.0, 1e-300]


def test_a_distance_too_small_for_a_float_is_a_bad_line_of_an_import(client, pack, tmp_path):
    history = tmp_path / "history.jsonl"
    history.write_text(raw_run("1e-400") + "\n" + raw_run("2.5") + "\n")
    out = io.StringIO()
    call_command("importevents", str(history), "--gym", "Riverside Runners", stdout=out, stderr=io.StringIO())
    assert "line 1: " in out.getvalue() and "Too small to tell apart from 0" in out.getvalue()
    table = tmp_path / "history.csv"
    table.write_text("external_id,member,type,occurred_at,distance_km,duration_min\n"
                     f"c-1,m-1,run,{run()['occurred_at']},1e-400,20\n")  # fmt: skip
    out = io.StringIO()
    call_command("importevents", str(table), "--gym", "Riverside Runners", stdout=out, stderr=io.StringIO())
    assert "line 2: " in out.getvalue() and "Too small to tell apart from 0" in out.getvalue()
    assert list(Event.objects.values_list("data__distance_km", flat=True)) == [2.5]


def test_not_before_1970_compares_instants_in_utc(client, pack):
    before = client.post(EVENTS_URL, {**run(), "occurred_at": "1970-01-01T00:30:00+01:00"}, format="json")
    assert before.status_code == 400
    assert before.json() == {"errors": {"occurred_at": [validation.DATETIME_TOO_EARLY]}}  # 1969-12-31T23:30Z
    after = client.post(EVENTS_URL, {**run(), "occurred_at": "1969-12-31T23:30:00-01:00"}, format="json")
    assert after.status_code == 201  # 1970-01-01T00:30Z


def test_a_line_nested_too_deeply_is_a_bad_line_not_a_traceback(client, pack, tmp_path):
    history = tmp_path / "deep.jsonl"
    history.write_text("[" * 100_000 + "]" * 100_000 + "\n" + json.dumps(run()) + "\n")
    out = io.StringIO()
    call_command("importevents", str(history), "--gym", "Riverside Runners", stdout=out, stderr=io.StringIO())
    assert "line 1: Not valid JSON: nested too deeply" in out.getvalue()
    assert Event.objects.count() == 1


def test_what_django_answers_outside_a_view_is_json_under_the_api():
    answer = Client().get(EVENTS_URL, HTTP_HOST="not-ours.example")  # refused before any view
    assert answer.status_code == 400 and answer["Content-Type"] == "application/json"
    assert answer.json() == {"detail": BAD_REQUEST}
    admin = Client().get("/admin/login/", HTTP_HOST="not-ours.example")
    assert admin.status_code == 400 and not admin["Content-Type"].startswith("application/json")


def test_a_form_over_the_size_limit_tells_the_clinician_what_to_do(admin_client):
    answer = admin_client.post(reverse("admin:rules_rule_add"), {"description": "x" * (2 * 1024 * 1024)})
    assert answer.status_code == 400
    assert FORM_TOO_LARGE in html.unescape(answer.content.decode())
