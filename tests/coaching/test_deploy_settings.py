"""Production settings: `check --deploy` is clean with HTTPS on, HSTS follows its variables, and
health and metrics stay reachable over plain http behind the proxy."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings
from django.test import Client, override_settings

pytestmark = pytest.mark.django_db


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """manage.py in a fresh process with production-like variables (and ``env`` on top)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ALLOWED_HOSTS"))}
    production = {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_HTTPS": "true",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(60),
        "DJANGO_DEBUG": "false",
        "ALLOWED_HOSTS": "example.org",
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env={**base, **production, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_https_on():
    done = manage("check", "--deploy", "--fail-level", "WARNING")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "WARNINGS" not in output and "ERRORS" not in output


HSTS = (
    "import json; from django.conf import settings as s; print(json.dumps([s.SECURE_HSTS_SECONDS, "
    "s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD, s.SECURE_SSL_REDIRECT]))"
)


def hsts(**env: str) -> list:
    done = manage("shell", "--no-imports", "-c", HSTS, **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_hsts_defaults_to_a_year_with_subdomains_and_preload_and_each_part_can_be_turned_down():
    assert hsts() == [31536000, True, True, True]
    turned_down = {"DJANGO_HSTS_SECONDS": "3600", "DJANGO_HSTS_INCLUDE_SUBDOMAINS": "false"}
    assert hsts(**turned_down, DJANGO_HSTS_PRELOAD="false") == [3600, False, False, True]
    assert hsts(DJANGO_HTTPS="false") == [0, False, False, False]  # plain http: no HSTS, no redirect


@override_settings(SECURE_SSL_REDIRECT=True, SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"))
def test_health_is_answered_over_plain_http_while_everything_else_goes_to_https():
    browser = Client()  # a new client loads the middleware with the settings above
    assert browser.get("/healthz").status_code == 200
    admin = browser.get("/admin/login/")
    assert admin.status_code == 301 and admin["Location"].startswith("https://")
    assert browser.get("/admin/login/", HTTP_X_FORWARDED_PROTO="https").status_code == 200
    # /metrics (scraped over http too) is exempt as well, whether or not this build serves it.
    assert browser.get("/metrics").status_code != 301
