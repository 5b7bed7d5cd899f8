"""Hostile rule packs: refused by the editor, the admin's import and `importpack`, with a message
naming the rule and the field; the live ruleset keeps giving advice."""

from __future__ import annotations

import copy
import html
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from coaching.services import clinician_ensure
from rules import spec as S
from rules.models import Rule, RulesetVersion
from rules.packs import pack_export
from rules.spec import MSG_TOO_MANY_RULES
from tests.coaching.conftest import run

from .conftest import rule_keys


def _live_pack() -> dict:
    return copy.deepcopy(pack_export())


def _with(pack: dict, key: str, **changes) -> dict:
    for spec in pack["rules"]:
        if spec["key"] == key:
            spec.update(changes)
    return pack


def _hostile(kind: str) -> tuple[dict, str, str]:
    """(pack, "rule key: field" expected in the refusal, message expected)."""
    pack = _live_pack()
    if kind == "cooldown":
        return _with(pack, "pain-stop", cooldown_days=999999999), "pain-stop: cooldown_days", S.MSG_COOLDOWN
    if kind == "window":
        return _with(pack, "persistent-pain", window_hours=1e9), "persistent-pain: window_hours", S.MSG_WINDOW_MAX
    if kind == "count":
        return _with(pack, "persistent-pain", count=10**9), "persistent-pain: count", S.MSG_COUNT_MAX
    template = next(spec for spec in pack["rules"] if spec["key"] == "warm-up")
    pack["rules"] += [{**copy.deepcopy(template), "key": f"copy-{n}"} for n in range(300 - len(pack["rules"]))]
    return pack, "ruleset: rules", MSG_TOO_MANY_RULES.format(max=100, count=300)


HOSTILE = ["cooldown", "window", "count", "300 rules"]


def _still_advising(client) -> None:
    assert "pain-stop" in rule_keys(client.send(run(pain_during=6), expect=201).json())


@pytest.mark.parametrize("kind", HOSTILE)
def test_importpack_refuses_a_hostile_pack_and_changes_nothing(pack, client, member, tmp_path, kind):
    hostile, where, message = _hostile(kind)
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(hostile))
    draft_before = list(Rule.objects.values_list("key", "revision"))
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("importpack", str(path), "--publish", stdout=io.StringIO(), stderr=err)
    assert f"{where}: {message}" in err.getvalue()
    assert list(Rule.objects.values_list("key", "revision")) == draft_before
    assert RulesetVersion.objects.count() == 1
    _still_advising(client)


@pytest.mark.parametrize("kind", HOSTILE)
def test_the_admin_import_refuses_a_hostile_pack(pack, client, member, kind):
    hostile, _where, message = _hostile(kind)
    clinician, _ = clinician_ensure(username="ana", password="a-long-clinician-password")
    from django.test import Client

    browser = Client()
    browser.force_login(clinician)
    page = browser.post(reverse("admin:rules_rule_import"), {"pack_text": json.dumps(hostile), "_apply": "1"})
    assert page.status_code == 200  # shown again with the problems, not applied
    assert message in html.unescape(page.content.decode())
    assert RulesetVersion.objects.count() == 1
    _still_advising(client)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("cooldown", "999999999", S.MSG_COOLDOWN),
        ("window", "1000000000", S.MSG_WINDOW_MAX),
        ("count", "1000000000", S.MSG_COUNT_MAX),
    ],
)
def test_the_editor_refuses_hostile_numbers(pack, client, member, field, value, message):
    from tests.rules.editor_data import editor_post

    clinician, _ = clinician_ensure(username="ana", password="a-long-clinician-password")
    from django.test import Client

    browser = Client()
    browser.force_login(clinician)
    rule = Rule.objects.get(key="persistent-pain")
    from rules.selectors import rule_spec

    data = editor_post(rule_spec(rule), revision=rule.revision)
    data[field] = value
    if field == "window":
        data["window_unit"] = "hours"
    page = browser.post(reverse("admin:rules_rule_change", args=[rule.pk]), data)
    assert page.status_code == 200  # the editor again, with the refusal
    assert message in html.unescape(page.content.decode())
    assert Rule.objects.get(key="persistent-pain").revision == rule.revision
    assert RulesetVersion.objects.count() == 1
    _still_advising(client)
