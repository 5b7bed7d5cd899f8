"""Error tracking (SENTRY_DSN): off by default; when on, a report says what failed and where in
the code, and never carries a member's data (their id, their events, what the request held)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from django.conf import settings
from sentry_sdk.transport import Transport

from coaching import services
from config.error_tracking import error_tracking_init
from config.version import VERSION

from .conftest import EVENTS_URL, MEMBERS_URL, pain, run

pytestmark = pytest.mark.django_db

MEMBER = "secret-member-4711"
NOTE = "back-pain-since-march"
COOKIE = "session-of-the-gym-app"


class Captured(Transport):
    """Keeps the reports instead of sending them anywhere."""

    reports: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: Any) -> None:
        for item in envelope.items:
            if item.type == "event":
                Captured.reports.append(json.loads(item.payload.get_bytes()))


@pytest.fixture
def reports() -> Iterator[list[dict[str, Any]]]:
    Captured.reports = []
    error_tracking_init(dsn="https://public@errors.invalid/1", transport=Captured)
    try:
        yield Captured.reports
    finally:
        sentry_sdk.flush()
        sentry_sdk.init()  # no DSN: reports off again for the rest of the suite


def test_error_tracking_is_off_unless_SENTRY_DSN_is_set():
    show = "import sentry_sdk; print(sentry_sdk.get_client().is_active())"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY_")}

    def active(**extra: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "--no-imports", "-c", show],
            cwd=settings.BASE_DIR,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    assert active() == "False"
    assert active(SENTRY_DSN="https://public@errors.invalid/1") == "True"


def test_a_report_of_a_failed_request_names_the_error_and_the_code_but_no_member_data(client, reports, monkeypatch):
    client.send(pain(member=MEMBER, external_id="first", pain=2), expect=201)

    def broken(**kwargs: Any) -> Any:
        raise RuntimeError(f"could not judge {kwargs} ({NOTE})")

    monkeypatch.setattr(services, "event_ingest", broken)
    client.raise_request_exception = False
    client.cookies["sessionid"] = COOKIE
    answer = client.post(
        f"{EVENTS_URL}?member={MEMBER}",
        run(member=MEMBER, external_id=NOTE, pain_during=7),
        format="json",
        HTTP_X_MEMBER_NOTE=NOTE,
    )
    assert answer.status_code == 500
    # A failure under a member's own URL: the route is reported, never the id in it.
    monkeypatch.setattr(services, "member_erase", broken)
    assert client.delete(f"{MEMBERS_URL}{MEMBER}/").status_code == 500
    sentry_sdk.flush()

    assert reports, "the errors were reported"
    sent = json.dumps(reports)
    # (The tests' own source lines are sent as the code around a frame: they name no secret.)
    for secret in (MEMBER, NOTE, COOKIE):
        assert secret not in sent, f"{secret!r} was sent: {sent[:2000]}"
    assert "RuntimeError" in sent and "test_error_tracking.py" in sent  # what failed, and where
    assert all(report["release"] == VERSION for report in reports)
    routes = {report.get("transaction") for report in reports}
    assert "/api/v1/members/{member}/" in routes, routes


def test_a_report_keeps_only_what_names_no_member():
    from config.error_tracking import event_scrub

    raw = {
        "event_id": "e1",
        "level": "error",
        "release": VERSION,
        "transaction": "/api/v1/members/{member}/",
        "transaction_info": {"source": "route"},
        "logentry": {"message": "Unhandled error on %s", "params": [f"/api/v1/members/{MEMBER}/"]},
        "exception": {"values": [{"type": "IntegrityError", "value": f"Key (external_id)=({MEMBER})", "stacktrace": {
            "frames": [{"filename": "coaching/services.py", "lineno": 3, "vars": {"member": MEMBER}}]}}]},
        "request": {"method": "GET", "url": f"http://x/api/v1/members/{MEMBER}/", "query_string": f"m={MEMBER}",
                    "headers": {"Cookie": MEMBER}, "data": {"member": MEMBER}},
        "extra": {"request_id": "r-1", "member": MEMBER, "event": NOTE},
        "user": {"id": MEMBER},
        "breadcrumbs": {"values": [{"message": f"GET /api/v1/members/{MEMBER}/"}]},
        "tags": {"member": MEMBER},
    }  # fmt: skip
    scrubbed = event_scrub(raw)
    assert MEMBER not in json.dumps(scrubbed) and NOTE not in json.dumps(scrubbed)
    error = scrubbed["exception"]["values"][0]
    assert error["type"] == "IntegrityError"
    assert error["stacktrace"]["frames"] == [{"filename": "coaching/services.py", "lineno": 3}]
    assert scrubbed["request"] == {"method": "GET", "url": "/api/v1/members/{member}/"}
    assert scrubbed["logentry"] == {"message": "Unhandled error on %s"}
    assert scrubbed["extra"] == {"request_id": "r-1"}
