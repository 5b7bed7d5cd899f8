"""Sizes bounded: every text of a rule and a whole pack, refused at save and at import with a
message a clinician reads; a pack nested too deeply is refused without a traceback."""

from __future__ import annotations

import html
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from rules import spec as S
from rules.models import Rule, RulesetVersion
from rules.packs import (
    MSG_PACK_INVALID,
    MSG_PACK_SHAPE,
    MSG_PACK_TOO_DEEP,
    MSG_PACK_TOO_LARGE,
    PACK_MAX_BYTES,
    PackError,
    pack_export,
    pack_read,
)
from rules.services import rule_save
from rules.spec import RuleValidationError
from tests.rules.conftest import make_spec

IMPORT = reverse("admin:rules_rule_import")
TEN_MIB = 10 * 1024 * 1024


def spec_with(**texts) -> dict:
    parameters = [{"name": "limit", "label": "Limit", "kind": "number", "value": 30, "unit": "°C"}]
    conditions = [{"step": 1, "group": 1, "field": "temperature", "operator": "gt", "parameter": "limit"}]
    spec = make_spec(conditions=conditions, parameters=parameters)
    for path, text in texts.items():
        head, *rest = path.split("__")
        if rest:
            spec[head][int(rest[0])][rest[1]] = text
        else:
            spec[head] = text
    return spec


def too_long(limit: int) -> str:
    return "x" * (limit + 1)


# (where the text goes, where the message belongs, the message)
CASES = [
    ("name", "name", S.MSG_TEXT_TOO_LONG.format(max=200, length=201), too_long(200)),
    ("description", "description", S.MSG_TEXT_TOO_LONG.format(max=2000, length=2001), too_long(2000)),
    ("message", "message", S.MSG_TEXT_TOO_LONG.format(max=1000, length=1001), too_long(1000)),
    ("summary", "summary", S.MSG_SUMMARY_LENGTH, too_long(S.SUMMARY_MAX)),
    ("source_label", "source_label", S.MSG_TEXT_TOO_LONG.format(max=300, length=301), too_long(300)),
    ("parameters__0__label", "parameters.0.label", S.MSG_TEXT_TOO_LONG.format(max=200, length=201), too_long(200)),
    ("parameters__0__unit", "parameters.0.unit", S.MSG_TEXT_TOO_LONG.format(max=30, length=31), too_long(30)),
    ("name", "name", S.MSG_NOT_TEXT, ["a", "list"]),
]


@pytest.mark.parametrize(("field", "path", "message", "text"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_every_text_of_a_rule_is_bounded(field, path, message, text):
    assert S.spec_validate(spec_with(**{field: text})).get(path) == [message]
    at_limit = text[:-1] if isinstance(text, str) else "ok"
    assert path not in S.spec_validate(spec_with(**{field: at_limit}))


def test_a_condition_value_is_bounded_as_typed():
    spec = make_spec(conditions=[{"step": 1, "group": 1, "field": "room", "operator": "in", "value": ["x" * 400]}])
    assert S.MSG_VALUE_TOO_LONG.format(max=300, length=400) in S.spec_validate(spec)["conditions.0.value"]


@pytest.mark.django_db
def test_a_ten_mib_description_is_refused_at_save_and_nothing_is_stored():
    with pytest.raises(RuleValidationError) as refused:
        rule_save(spec=spec_with(description="x" * TEN_MIB))
    assert refused.value.errors["description"] == [S.MSG_TEXT_TOO_LONG.format(max=2000, length=TEN_MIB)]
    assert not Rule.objects.exists()


def pack_of(*specs: dict) -> str:
    return json.dumps({"format": "rules-pack", "format_version": 2, "rules": list(specs)})


def test_a_pack_over_its_size_is_refused_before_it_is_read():
    text = pack_of(spec_with(description="x" * TEN_MIB))
    with pytest.raises(PackError) as refused:
        pack_read(text)
    assert refused.value.message == MSG_PACK_TOO_LARGE
    assert len(pack_of(spec_with(description="x" * 2000))) < PACK_MAX_BYTES


def test_a_long_text_in_a_pack_is_refused_naming_the_rule_and_the_field():
    with pytest.raises(PackError) as refused:
        pack_read(pack_of(spec_with(message="x" * 5000)))
    assert refused.value.message == MSG_PACK_INVALID
    assert refused.value.errors["hot: message"] == [S.MSG_TEXT_TOO_LONG.format(max=1000, length=5000)]


@pytest.mark.parametrize("depth", [100_000, 5_000])
def test_json_nested_deeply_is_refused_cleanly(depth):
    for text in ("[" * depth + "]" * depth, pack_of(spec_with(description=None))[:-2] + ', "x": ' + "[" * depth):
        with pytest.raises(PackError) as refused:
            pack_read(text)
        assert refused.value.message in (MSG_PACK_TOO_DEEP, "This file is not a rule pack: it is not valid JSON.")
    with pytest.raises(PackError) as refused:
        pack_read("[" * depth + "]" * depth)
    assert refused.value.message == MSG_PACK_TOO_DEEP


@pytest.mark.django_db
@pytest.mark.parametrize("hostile", ["deep", "ten-mib"])
def test_importpack_refuses_deep_json_and_a_huge_pack_in_words_without_a_traceback(tmp_path, publish, hostile):
    publish(make_spec())
    path = tmp_path / "pack.json"
    path.write_text(
        "[" * 100_000 + "]" * 100_000 if hostile == "deep" else pack_of(spec_with(description="x" * TEN_MIB))
    )
    err = io.StringIO()
    with pytest.raises(CommandError) as refused:
        call_command("importpack", str(path), "--publish", stdout=io.StringIO(), stderr=err)
    expected = MSG_PACK_TOO_DEEP if hostile == "deep" else MSG_PACK_TOO_LARGE
    assert str(refused.value) == expected
    assert RulesetVersion.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("hostile", ["deep", "ten-mib"])
def test_the_admin_import_refuses_deep_json_and_a_huge_pack_in_words(admin_client, publish, hostile):
    publish(make_spec())
    text = "[" * 100_000 + "]" * 100_000 if hostile == "deep" else pack_of(spec_with(description="x" * TEN_MIB))
    upload = SimpleUploadedFile("pack.json", text.encode(), content_type="application/json")
    page = admin_client.post(IMPORT, {"pack": upload})
    assert page.status_code == 200
    shown = html.unescape(page.content.decode())
    expected = MSG_PACK_TOO_DEEP if hostile == "deep" else MSG_PACK_TOO_LARGE
    assert expected in shown
    assert pack_export()["rules"][0]["description"] == ""


@pytest.mark.parametrize(
    ("change", "where", "expected"),
    [
        ({"steps": [{"fact_type": ["reading"]}]}, "hot: steps.0.fact_type", "a text"),
        ({"steps": "reading"}, "hot: steps", "a list of objects"),
        ({"conditions": [1]}, "hot: conditions", "a list of objects"),
        ({"parameters": [{"name": ["a"], "kind": "number", "value": 1}]}, "hot: parameters.0.name", "a text"),
        ({"key": ["hot"]}, "rule 1: key", "a text"),
        ({"severity": {"level": 1}}, "hot: severity", "a text"),
    ],
)
def test_a_pack_of_the_wrong_shape_is_refused_naming_the_part_not_with_a_traceback(change, where, expected):
    with pytest.raises(PackError) as refused:
        pack_read(pack_of({**make_spec(), **change}))
    assert refused.value.message == MSG_PACK_INVALID
    assert refused.value.errors[where] == [MSG_PACK_SHAPE.format(expected=expected)]
