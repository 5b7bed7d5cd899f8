"""Published versions: immutable snapshots, the latest is live, rollback, hot reload without restart."""

import json
import os
import subprocess
import sys
import threading

import pytest
from django.conf import settings
from django.db import connection

from rules import services
from rules.internal.compiler import ruleset_compile
from rules.models import Rule, RuleChange, RulesetVersion
from rules.packs import pack_install, pack_read
from rules.registry import registry
from rules.selectors import ruleset_draft_specs
from rules.spec import spec_normalize
from tests.rules.conftest import cond, fired, make_spec, reading

pytestmark = pytest.mark.django_db


def threshold_spec(limit):
    return make_spec(
        conditions=[cond("temperature", "gt", parameter="limit")],
        parameters=[{"name": "limit", "label": "Limit", "kind": "number", "value": limit, "unit": "°C"}],
    )


def test_compiling_is_deterministic():
    specs = [spec_normalize(threshold_spec(30)), spec_normalize(make_spec("other", message="x"))]
    first, second = ruleset_compile(specs, catalog=registry), ruleset_compile(list(reversed(specs)), catalog=registry)
    assert first.single_json == second.single_json and first.pattern_json == second.pattern_json


def test_draft_edits_do_not_reach_evaluation_until_published(publish):
    publish(threshold_spec(30))
    services.rule_save(spec=threshold_spec(40))
    assert fired(reading(temperature=35)) == ["hot"]
    services.ruleset_publish(comment="raise the limit")
    assert fired(reading(temperature=35)) == []


def test_versions_are_numbered_and_immutable(publish):
    first = publish(threshold_spec(30))
    second = services.ruleset_publish(comment="again")
    assert (first.number, second.number) == (1, 2)
    first.comment = "rewritten"
    with pytest.raises(Exception, match="never changes"):
        first.save()


def test_rollback_republishes_an_old_version_and_resets_the_draft(publish):
    publish(threshold_spec(30))
    publish(threshold_spec(40), make_spec("extra", conditions=[cond("level", "gt", 8)], message="x"))
    assert fired(reading(temperature=35)) == []
    version = services.ruleset_rollback(version=1)
    assert version.number == 3 and version.rolled_back_from == 1
    assert fired(reading(temperature=35)) == ["hot"]
    assert [s["key"] for s in ruleset_draft_specs()] == ["hot"]
    assert Rule.objects.get().parameters.get().value == "30"


def test_every_draft_change_is_audited(publish):
    publish(threshold_spec(30))
    services.rule_save(spec=threshold_spec(40))
    change = RuleChange.objects.first()
    assert change.action == "changed"
    assert change.before["parameters"][0]["value"] == "30" and change.after["parameters"][0]["value"] == "40"


def test_a_stale_revision_is_refused(publish):
    publish(threshold_spec(30))
    first_editor, second_editor = Rule.objects.get(), Rule.objects.get()
    services.rule_save(spec=threshold_spec(35), rule=first_editor, expected_revision=first_editor.revision)
    with pytest.raises(services.RuleConflictError, match="Someone else saved this rule"):
        services.rule_save(spec=threshold_spec(40), rule=second_editor, expected_revision=second_editor.revision)
    assert Rule.objects.get().parameters.get().value == "35"


def test_installing_a_pack_twice_changes_nothing_the_second_time(db):
    pack = pack_read(json.dumps({"format": "rules-pack", "rules": [threshold_spec(30)]}))
    assert pack_install(pack=pack, comment="pack").changed is True
    services.rule_save(spec=threshold_spec(45))  # a clinician's edit survives
    assert pack_install(pack=pack, comment="pack").changed is False
    assert RulesetVersion.objects.count() == 1
    assert Rule.objects.get().parameters.get().value == "45"


@pytest.mark.django_db(transaction=True)
def test_threads_evaluating_while_another_publishes_never_crash(publish):
    publish(threshold_spec(30))
    errors = []

    def evaluate():
        try:
            for _ in range(300):
                assert fired(reading(temperature=99)) == ["hot"]
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=evaluate) for _ in range(3)]
    for thread in threads:
        thread.start()
    for limit in (31, 32, 33):
        services.ruleset_publish(specs=[threshold_spec(limit)])
    for thread in threads:
        thread.join()
    assert errors == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_publish_in_one_process_is_used_by_another_without_restart(publish):
    publish(threshold_spec(30))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.rules.settings",
        "RULES_TEST_DB": str(connection.settings_dict["NAME"]),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.rules.worker"],
        cwd=settings.BASE_DIR,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:

        def ask(temperature):
            worker.stdin.write(f"{temperature}\n")
            worker.stdin.flush()
            return json.loads(worker.stdout.readline())

        before = ask(35)
        assert (before["version"], before["fired"]) == (1, ["hot"])
        services.ruleset_publish(specs=[threshold_spec(40)], comment="raise the limit")
        after = ask(35)
        assert (after["version"], after["fired"]) == (2, [])
        assert after["pid"] == before["pid"]
        services.ruleset_rollback(version=1)
        assert ask(35)["fired"] == ["hot"]
    finally:
        worker.stdin.close()
        worker.wait(timeout=30)
