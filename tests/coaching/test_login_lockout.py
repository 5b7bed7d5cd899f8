"""Admin login lockout (django-axes, config/security.py): repeated wrong passwords for one
username from one address pause that login, for every process, until the cool-off ends or an
operator unlocks it."""

from __future__ import annotations

import io

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.core.management import call_command
from django.test import Client, RequestFactory, override_settings

from coaching.services import clinician_ensure
from config.security import LOCKED_OUT_TITLE, client_ip

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
PASSWORD = "a-long-clinician-password"
WRONG = "not-the-password"


@pytest.fixture
def clinician(db):
    user, _ = clinician_ensure(username="pt-anna", password=PASSWORD)
    return user


def log_in(browser: Client, password: str, username: str = "pt-anna", **extra: str):
    return browser.post(LOGIN, {"username": username, "password": password, "next": "/admin/"}, **extra)


def logged_in(response) -> bool:
    return response.status_code == 302 and response["Location"] == "/admin/"


def fail(times: int, username: str = "pt-anna", **extra: str) -> None:
    """``times`` wrong passwords, each from a new client (a new session): the login form again,
    then, at the fifth, the lockout page."""
    for attempt in range(1, times + 1):
        expected = 429 if attempt == settings.AXES_FAILURE_LIMIT else 200
        assert log_in(Client(), WRONG, username, **extra).status_code == expected


def test_five_wrong_passwords_lock_the_login_even_for_the_right_password(clinician):
    assert settings.AXES_FAILURE_LIMIT == 5
    browser = Client()
    for _ in range(4):
        assert log_in(browser, WRONG).status_code == 200
    locking = log_in(browser, WRONG)
    assert locking.status_code == 429
    refused = log_in(browser, PASSWORD)
    assert refused.status_code == 429 and "_auth_user_id" not in browser.session
    page = refused.content.decode()
    assert LOCKED_OUT_TITLE in page and "Try again after" in page and "about 15 minutes" in page
    assert 'id="site-name"' in page  # the admin's own header: a page in the admin's look, not a bare 403


def test_the_lockout_holds_for_a_new_session_and_ends_when_an_operator_resets_it(clinician):
    fail(5)  # the count is in the database, not in a session
    assert log_in(Client(), PASSWORD).status_code == 429
    call_command("axes_reset", stdout=io.StringIO())
    assert logged_in(log_in(Client(), PASSWORD))


def test_an_operator_can_unlock_one_username(clinician):
    fail(5)
    call_command("axes_reset_username", "pt-anna", stdout=io.StringIO())
    assert logged_in(log_in(Client(), PASSWORD))


def test_the_lockout_is_per_username_and_address(clinician):
    clinician_ensure(username="pt-ben", password=PASSWORD)
    fail(5)
    assert log_in(Client(), PASSWORD).status_code == 429
    # A colleague behind the same address, and the same clinician from elsewhere, still get in.
    assert logged_in(log_in(Client(), PASSWORD, username="pt-ben"))
    assert logged_in(log_in(Client(), PASSWORD, REMOTE_ADDR="198.51.100.7"))


def test_a_successful_login_starts_the_count_again(clinician):
    fail(4)
    assert logged_in(log_in(Client(), PASSWORD))
    fail(4)
    assert logged_in(log_in(Client(), PASSWORD))


@override_settings(CLIENT_IP_HEADER="HTTP_X_FORWARDED_FOR", PROXY_COUNT=1)
def test_behind_a_proxy_the_address_comes_from_the_header_it_writes(clinician):
    # The client forged the left entry; the proxy appended the address it saw.
    fail(5, HTTP_X_FORWARDED_FOR="10.9.9.9, 203.0.113.5", REMOTE_ADDR="10.0.0.1")
    assert log_in(Client(), PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.5", REMOTE_ADDR="10.0.0.1").status_code == 429
    # Another client behind the same proxy is someone else, whatever it forges.
    other = log_in(Client(), PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.5, 192.0.2.44", REMOTE_ADDR="10.0.0.1")
    assert logged_in(other)


def test_client_address_defaults_to_remote_addr_and_ignores_forged_headers():
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="203.0.113.5")
    assert client_ip(request) == "192.0.2.1"


@pytest.mark.parametrize(
    ("header", "count", "expected"),
    [
        ("203.0.113.5", 1, "203.0.113.5"),
        ("10.9.9.9, 203.0.113.5", 1, "203.0.113.5"),
        ("10.9.9.9, 203.0.113.5, 10.0.0.2", 2, "203.0.113.5"),
        ("203.0.113.5", 2, "192.0.2.1"),  # fewer entries than proxies: not from behind them
        ("not-an-address", 1, "192.0.2.1"),
        ("", 1, "192.0.2.1"),
    ],
)
def test_client_address_behind_proxies(header, count, expected):
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR=header)
    with override_settings(CLIENT_IP_HEADER="HTTP_X_FORWARDED_FOR", PROXY_COUNT=count):
        assert client_ip(request) == expected


def test_tries_during_the_pause_do_not_extend_it(clinician):
    fail(5)
    ends = AccessAttempt.objects.get(username="pt-anna").attempt_time
    assert log_in(Client(), WRONG).status_code == 429
    assert log_in(Client(), PASSWORD).status_code == 429
    attempt = AccessAttempt.objects.get(username="pt-anna")
    assert (attempt.attempt_time, attempt.failures_since_start) == (ends, 5)
