"""Safe defaults however the product is started: debug off unless DJANGO_DEBUG=true, DRF's
browsable pages only with debug, a Content-Security-Policy on every answer, and proxy headers
trusted only from FORWARDED_ALLOW_IPS."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.test import Client

from .conftest import EVENTS_URL, run
from .hosts import Host, call

pytestmark = pytest.mark.django_db

SHOW = (
    "import json; from django.conf import settings as s; "
    "print(json.dumps([s.DEBUG, s.REST_FRAMEWORK['DEFAULT_RENDERER_CLASSES']]))"
)


def started(**env: str) -> subprocess.CompletedProcess:
    """``manage.py`` in a fresh process with only ``env`` of the product's variables set."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ALLOWED_HOSTS"))}
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", SHOW],
        cwd=settings.BASE_DIR,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def shown(**env: str) -> list:
    done = started(**env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_debug_is_off_unless_DJANGO_DEBUG_is_true():
    key = "k" * 60
    assert shown(DJANGO_SECRET_KEY=key)[0] is False
    assert shown(DJANGO_SECRET_KEY=key, DJANGO_DEBUG="false")[0] is False
    assert shown(DJANGO_SECRET_KEY=key, DJANGO_DEBUG="true")[0] is True
    assert shown(DJANGO_DEBUG="true")[0] is True  # a development key of its own


def test_without_a_secret_key_and_debug_off_the_start_stops_with_a_clear_message():
    done = started()
    assert done.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in done.stderr


def test_the_browsable_api_is_there_only_with_debug():
    browsable = "rest_framework.renderers.BrowsableAPIRenderer"
    assert browsable not in shown(DJANGO_SECRET_KEY="k" * 60)[1]
    assert browsable in shown(DJANGO_DEBUG="true")[1]


def test_without_debug_the_api_answers_json_whatever_format_or_accept_asks(client):
    client.send(run(), expect=201)
    asked = client.get(EVENTS_URL, {"format": "api"})
    assert asked.status_code == 404 and asked["Content-Type"] == "application/json"
    html = client.get(EVENTS_URL, HTTP_ACCEPT="text/html")
    assert html.status_code in (200, 406) and html["Content-Type"] == "application/json"


@pytest.mark.parametrize("path", ["/admin/login/", "/api/v1/events/", "/healthz", "/api/docs/"])
def test_every_answer_carries_a_content_security_policy_without_inline_script(path):
    policy = Client().get(path)["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"


@pytest.mark.slow
def test_gunicorn_trusts_proxy_headers_only_from_FORWARDED_ALLOW_IPS(tmp_path):
    host = Host.make(tmp_path)
    host.python(EVENTS_STORED.format(events=json.dumps([run(external_id=f"e-{n}") for n in range(2)])))

    def next_link(**env: str) -> str:
        with host.gunicorn(**env) as url:
            answer = call(f"{url}{EVENTS_URL}?page_size=1", key=host.key, headers={"X-Forwarded-Proto": "https"})
        assert answer.status == 200, answer.body
        return answer.json()["next"]

    # Unset: not even the loopback address is trusted (gunicorn's own default would trust it).
    assert next_link().startswith("http://127.0.0.1:")
    assert next_link(FORWARDED_ALLOW_IPS="127.0.0.1").startswith("https://127.0.0.1:")


EVENTS_STORED = """
import django, json
django.setup()
from coaching.models import Gym
from coaching.services import event_ingest
for payload in json.loads('{events}'):
    assert event_ingest(gym=Gym.objects.get(), payload=payload).status == 201
"""
