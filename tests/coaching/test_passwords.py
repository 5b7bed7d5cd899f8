"""Every password set through the product passes Django's four standard validators
(AUTH_PASSWORD_VALIDATORS): createclinician, its prompt, the demo login, and the tests' own."""

from __future__ import annotations

import io
import json

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.management import ManagementUtility, call_command
from django.core.management.base import CommandError

from coaching.management.commands import createclinician
from coaching.services import clinician_ensure

from .test_clinician_browser import PASSWORD as BROWSER_PASSWORD
from .test_login_lockout import PASSWORD as LOCKOUT_PASSWORD

pytestmark = pytest.mark.django_db

TOO_SHORT = "This password is too short. It must contain at least 12 characters."
TOO_COMMON = "This password is too common."
ENTIRELY_NUMERIC = "This password is entirely numeric."
TOO_SIMILAR = "The password is too similar to the username."


def test_the_four_standard_validators_are_on():
    names = [v["NAME"].rsplit(".", 1)[1] for v in settings.AUTH_PASSWORD_VALIDATORS]
    assert names == [
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    ]


def test_createclinician_refuses_a_weak_password_with_the_validators_words():
    with pytest.raises(CommandError) as refused:
        call_command("createclinician", "dr-lee", "--password", "a", stdout=io.StringIO())
    assert createclinician.MSG_REFUSED in str(refused.value) and TOO_SHORT in str(refused.value)
    assert not get_user_model().objects.filter(username="dr-lee").exists()


@pytest.mark.parametrize(
    ("password", "message"),
    [("123456789012345", ENTIRELY_NUMERIC), ("password1234", TOO_COMMON), ("dr-lee-the-clinician", TOO_SIMILAR)],
)
def test_createclinician_names_each_reason(password, message):
    with pytest.raises(CommandError, match=message):
        call_command("createclinician", "dr-lee-the-clinician", "--password", password, stdout=io.StringIO())


def test_a_weak_password_leaves_an_existing_clinician_unchanged():
    user, _ = clinician_ensure(username="dr-lee", password="a-long-clinician-password")
    with pytest.raises(ValidationError):
        clinician_ensure(username="dr-lee", password="short")
    user.refresh_from_db()
    assert user.check_password("a-long-clinician-password")


def test_createclinician_exits_non_zero_on_a_weak_password(capsys):
    """From the shell (manage.py's own entry point): the messages on stderr and exit status 1."""
    with pytest.raises(SystemExit) as exited:
        ManagementUtility(["manage.py", "createclinician", "dr-lee", "--password", "a"]).execute()
    assert exited.value.code == 1
    assert TOO_SHORT in capsys.readouterr().err


def test_the_prompt_refuses_a_weak_password_too(monkeypatch):
    monkeypatch.setattr(createclinician.Command, "stdin_is_tty", staticmethod(lambda: True))
    monkeypatch.setattr(createclinician.getpass, "getpass", lambda prompt="": "12345678901234")
    with pytest.raises(CommandError, match=ENTIRELY_NUMERIC):
        call_command("createclinician", "dr-lee", stdout=io.StringIO())
    assert not get_user_model().objects.filter(username="dr-lee").exists()


def test_the_prompt_refuses_a_blank_password(monkeypatch):
    monkeypatch.setattr(createclinician.Command, "stdin_is_tty", staticmethod(lambda: True))
    monkeypatch.setattr(createclinician.getpass, "getpass", lambda prompt="": "")
    with pytest.raises(CommandError, match=createclinician.MSG_BLANK):
        call_command("createclinician", "dr-lee", stdout=io.StringIO())


def test_the_prompt_accepts_a_good_password(monkeypatch):
    monkeypatch.setattr(createclinician.Command, "stdin_is_tty", staticmethod(lambda: True))
    monkeypatch.setattr(createclinician.getpass, "getpass", lambda prompt="": "a-long-clinician-password")
    call_command("createclinician", "dr-lee", stdout=io.StringIO())
    assert get_user_model().objects.get(username="dr-lee").check_password("a-long-clinician-password")


def test_the_two_demo_logins_pass_the_validators_and_are_printed(tmp_path, pack):
    credentials = tmp_path / "demo.json"
    out = io.StringIO()
    call_command("demo", "--credentials", str(credentials), stdout=out)
    saved = json.loads(credentials.read_text())
    for username, key in (("clinician", "password"), ("second-clinician", "second_password")):
        user = get_user_model().objects.get(username=username)
        password_validation.validate_password(saved[key], user)
        assert user.check_password(saved[key]) and user.groups.filter(name="Clinicians").exists()
        assert f"login {username} / {saved[key]}" in out.getvalue()
    again = io.StringIO()
    call_command("demo", "--credentials", str(credentials), stdout=again)  # kept: the same logins
    assert json.loads(credentials.read_text()) == saved and f"/ {saved['second_password']}" in again.getvalue()


@pytest.mark.parametrize("password", [BROWSER_PASSWORD, LOCKOUT_PASSWORD])
def test_the_tests_own_clinician_password_passes_the_validators(password):
    password_validation.validate_password(password, get_user_model()(username="pt-anna"))


def test_the_admin_refuses_a_weak_password_for_a_new_user(admin_client):
    response = admin_client.post(
        "/admin/auth/user/add/",
        {"username": "front-desk", "usable_password": "true", "password1": "frontdesk", "password2": "frontdesk"},
    )
    assert response.status_code == 200 and TOO_SHORT in response.content.decode()
    assert not get_user_model().objects.filter(username="front-desk").exists()
