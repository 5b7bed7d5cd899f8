"""The clinician's admin pages, against the rules app's own test domain (no coaching)."""

from __future__ import annotations

import datetime as dt
import html
import json

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from rules import evaluation, services, simulation
from rules import spec as S
from rules.admin.describe import message_named, moment_words, spec_when
from rules.admin.forms import KEY_FIXED_HELP, LIVE_CHECK_MESSAGES, MSG_PARAMETER_LABEL
from rules.admin.views import MSG_DELETE_LIVE, MSG_SETTINGS_SAVED
from rules.evaluation import Fact
from rules.governance import MSG_NOTHING_TO_PUBLISH
from rules.models import Rule, RuleChange, RulesetVersion
from rules.packs import MSG_PACK_FORMAT, pack_export
from rules.registry import AdviceTally, FactSource, registry
from rules.selectors import ruleset_draft_settings, ruleset_draft_specs
from rules.services import MSG_CONFLICT, MSG_KEY_FIXED, MSG_KEY_TAKEN
from rules.spec import spec_normalize
from tests.rules.conftest import T0, cond, make_spec
from tests.rules.editor_data import editor_post

pytestmark = pytest.mark.django_db

LIST = reverse("admin:rules_rule_changelist")
ADD = reverse("admin:rules_rule_add")
PUBLISH = reverse("admin:rules_rule_publish")
ROLLBACK = reverse("admin:rules_rule_rollback")
SIMULATE = reverse("admin:rules_rule_simulate")
EXPORT = reverse("admin:rules_rule_export")
IMPORT = reverse("admin:rules_rule_import")
DESCRIBE = reverse("admin:rules_rule_describe")


def change_url(rule: Rule) -> str:
    return reverse("admin:rules_rule_change", args=[rule.pk])


def threshold_spec(value: float = 30, key: str = "hot") -> dict:
    return make_spec(
        key,
        conditions=[cond("temperature", "gt", parameter="limit")],
        parameters=[{"name": "limit", "label": "Limit", "kind": "number", "value": value, "unit": "°C"}],
        message="Temperature {temperature} over {limit}",
    )


class MemorySource(FactSource):
    """Stored facts kept in a list: enough for try it, simulation and statistics."""

    def __init__(self, facts: list[Fact], counts: dict | None = None) -> None:
        self.facts = sorted(facts, key=lambda f: (f.occurred_at, f.id))
        self.counts = counts or {}

    def subjects(self, *, search: str = "", limit: int = 50) -> list[tuple[str, str]]:
        return [(g, f"Group {g}") for g in sorted({f.group for f in self.facts})][:limit]

    def enrich(self, *, fact_type, data, occurred_at, subject):
        history = [f for f in self.facts if subject and f.group == subject and f.occurred_at < occurred_at]
        return Fact(
            id="try",
            type=fact_type,
            occurred_at=occurred_at,
            data={**data, "readings_today": len(history) + 1},
            group=subject or "",
        ), history

    def timelines(self, *, since):
        """Each subject with facts since ``since``: all its facts in time order, and a label per fact."""
        for group in sorted({f.group for f in self.facts if f.occurred_at >= since}):
            facts = [f for f in self.facts if f.group == group]
            yield facts, {f.id: f"Group {group}" for f in facts}

    def advice_statistics(self, *, first_day: dt.date) -> list[AdviceTally]:
        return [
            AdviceTally(rule_key, day, current=count)
            for rule_key, per_day in self.counts.items()
            for day, count in per_day.items()
            if day >= first_day
        ]


@pytest.fixture
def source():
    previous = registry.fact_source()
    now = timezone.now()
    facts = [
        Fact(id=str(i), type="reading", occurred_at=now - dt.timedelta(days=d), data={"temperature": t}, group=g)
        for i, (d, t, g) in enumerate(
            [(40, 50, "a"), (5, 31, "a"), (4, 33, "b"), (3, 36, "a"), (2, 40, "c"), (1, 20, "b")]
        )
    ]
    today = timezone.localdate()
    counts = {"hot": {today: 3, today - dt.timedelta(days=10): 2}}
    fake = MemorySource(facts, counts)
    registry.register_fact_source(fake)
    yield fake
    registry.register_fact_source(previous)


@pytest.fixture
def live_hot(admin_user):
    services.rule_save(spec=threshold_spec(30), user=admin_user)
    return services.ruleset_publish(user=admin_user, comment="first")


# -- list ---------------------------------------------------------------------------------------
def test_rule_list_shows_live_version_and_draft_markers(admin_client, live_hot, admin_user):
    services.rule_save(spec=make_spec("cold", conditions=[cond("temperature", "lt", 5)]), user=admin_user)
    page = admin_client.get(LIST).content.decode()
    assert "Live: version 1" in page and "“first”" in page
    assert "draft: not yet published" in page and ">live<" in page
    assert "1 added" in page
    for text in ("Publish…", "Roll back…", "Simulate", "Try it", "Export pack", "Import pack"):
        assert text in page


def test_rule_list_search_and_filters(admin_client, live_hot, admin_user):
    services.rule_save(spec=make_spec("noisy", category="comfort", severity="note"), user=admin_user)
    assert "noisy" not in admin_client.get(LIST, {"q": "hot"}).content.decode()
    page = admin_client.get(LIST, {"category": "comfort"}).content.decode()
    assert "noisy" in page and change_url(Rule.objects.get(key="hot")) not in page
    assert "noisy" in admin_client.get(LIST, {"severity": "note"}).content.decode()
    assert admin_client.get(LIST, {"enabled__exact": "0"}).status_code == 200


def test_enable_and_disable_actions_change_the_draft(admin_client, live_hot):
    rule = Rule.objects.get(key="hot")
    admin_client.post(LIST, {"action": "disable_rules", "_selected_action": [rule.pk]})
    rule.refresh_from_db()
    assert rule.enabled is False
    assert RuleChange.objects.filter(rule_key="hot", action="changed").exists()
    assert RulesetVersion.objects.get(number=1).snapshot[0]["enabled"] is True  # live is untouched
    admin_client.post(LIST, {"action": "enable_rules", "_selected_action": [rule.pk]})
    rule.refresh_from_db()
    assert rule.enabled is True


# -- editor ---------------------------------------------------------------------------------------
def test_clinician_creates_a_rule_with_the_editor(admin_client, admin_user):
    response = admin_client.post(ADD, editor_post(threshold_spec(25)))
    assert response.status_code == 302, response.content.decode()[:3000]
    rule = Rule.objects.get(key="hot")
    assert rule.updated_by == admin_user
    assert [p.value for p in rule.parameters.all()] == ["25"]
    assert RuleChange.objects.get(rule_key="hot").action == "created"


def test_editor_shows_the_catalog_and_the_sentence(admin_client, live_hot):
    page = admin_client.get(change_url(Rule.objects.get(key="hot"))).content.decode()
    assert "rules-catalog" in page and "Serviced on" in page and "°C" in page
    assert "When a reading has temperature over 30 °C: urgent" in page


def test_the_admin_speaks_of_what_the_domain_registered_not_of_members(admin_client, live_hot):
    page = admin_client.get(change_url(Rule.objects.get(key="hot"))).content.decode()
    assert "What the thermostat reads" in page
    assert "Figures from the thermostat's history" in page
    assert "member" not in page.lower()


def test_editor_puts_spec_errors_on_the_right_widget_and_saves_nothing(admin_client):
    spec = make_spec(conditions=[cond("temperature", "in", "1, 2")])
    page = admin_client.post(ADD, editor_post(spec)).content.decode()
    assert "does not fit Temperature" in page
    assert not Rule.objects.exists()


def streak_spec(**overrides) -> dict:
    fields = {"pattern": "count", "count": 3, "window_hours": 48, "message": "{count} in {window_days} days"}
    return make_spec("streak", conditions=[cond("temperature", "gt", 30)], **{**fields, **overrides})


def test_windows_in_days_are_stored_as_hours_and_cooldowns_in_weeks_as_days(admin_client):
    data = {
        **editor_post(streak_spec()),
        "window": "7",
        "window_unit": "days",
        "cooldown": "2",
        "cooldown_unit": "weeks",
    }
    response = admin_client.post(ADD, data)
    assert response.status_code == 302, text(response)[:3000]
    saved = ruleset_draft_specs()[0]
    assert (saved["window_hours"], saved["cooldown_days"]) == (168, 14)
    page = text(admin_client.get(change_url(Rule.objects.get())))
    assert 'name="window" value="7"' in page and '<option value="days" selected>days</option>' in page
    assert 'name="cooldown" value="2"' in page and '<option value="weeks" selected>weeks</option>' in page
    assert "When 3 readings with temperature over 30 °C occur within 7 days" in page
    response = admin_client.post(change_url(Rule.objects.get()), {**data, "window": "36", "window_unit": "hours"})
    assert response.status_code == 302
    assert ruleset_draft_specs()[0]["window_hours"] == 36


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"window": "91", "window_unit": "days"}, "window", S.MSG_WINDOW_MAX),
        ({"window": "0", "window_unit": "hours"}, "window", S.MSG_WINDOW),
        ({"cooldown": "53", "cooldown_unit": "weeks"}, "cooldown", S.MSG_COOLDOWN),
        ({"cooldown": "1.5", "cooldown_unit": "weeks"}, "cooldown", "Enter a whole number."),
    ],
)
def test_a_refused_window_or_cooldown_is_said_once_next_to_it(admin_client, change, field, message):
    page = text(admin_client.post(ADD, {**editor_post(streak_spec()), **change}))
    row = page.split(f'<div class="form-row field-{field} errors">')[1].split('<div class="form-row')[0]
    assert f"><li>{message}</li></ul>" in row
    assert page.count('<ul class="errorlist') == 1
    assert not Rule.objects.exists()


def block_ui_post(rows: list[dict], **spec_fields) -> dict[str, str]:
    """What the editor of a new rule posts: conditions in the order they were added, each with the
    hidden event (step) and block (group) the page gave it."""
    data = editor_post(make_spec("mixed", conditions=[], **{"message": "Level {level}", **spec_fields}))
    data.update({"conditions-TOTAL_FORMS": str(len(rows)), "conditions-INITIAL_FORMS": "0"})
    for index, row in enumerate(rows):
        data.update({f"conditions-{index}-{name}": str(value) for name, value in row.items()})
    return data


def test_conditions_posted_in_blocks_give_the_spec_groups(admin_client):
    rows = [
        {"step": 1, "group": 1, "field": "level", "operator": "gte", "value": "8"},
        {"step": 1, "group": 3, "field": "alarm", "operator": "eq", "value": "true"},
        {"step": 1, "group": 1, "field": "temperature", "operator": "gt", "value": "30"},  # "Add an alternative"
        {"step": 1, "group": 2, "field": "room", "operator": "eq", "value": "hall", "DELETE": "on"},  # block removed
        {"step": 1, "group": 3},  # an alternative added and left empty
        {"step": 1, "group": 3, "field": "temperature", "operator": "lt", "value": "100"},
    ]
    response = admin_client.post(ADD, block_ui_post(rows))
    assert response.status_code == 302, text(response)[:3000]
    saved = spec_normalize(ruleset_draft_specs()[0])
    assert [(c["group"], c["field"], c["operator"], c["value"]) for c in saved["conditions"]] == [
        (1, "level", "gte", 8),
        (1, "temperature", "gt", 30),
        (2, "alarm", "eq", True),
        (2, "temperature", "lt", 100),
    ]
    page = text(admin_client.get(change_url(Rule.objects.get())))
    assert "When a reading has (level of 8 or more or temperature over 30 °C) and (“alarm”: yes or" in page
    assert page.count('<div class="rules-block-title">Any of these</div>') == 2  # both shown
    assert page.count('<div class="rules-and">and</div>') == 1  # between the two blocks
    assert '<input type="hidden" name="conditions-0-group" value="1"' in page
    assert '<input type="hidden" name="conditions-2-group" value="2"' in page
    assert 'type="number" name="conditions-0-group"' not in page and "Same group" not in page


def test_a_new_rule_starts_with_one_empty_condition_that_may_stay_empty(admin_client):
    page = text(admin_client.get(ADD))
    assert 'name="conditions-TOTAL_FORMS" value="1"' in page and 'name="conditions-INITIAL_FORMS" value="0"' in page
    rows = [{"step": 1, "group": 1}, {"step": 1, "group": 2, "field": "level", "operator": "gte", "value": "3"}]
    assert admin_client.post(ADD, block_ui_post(rows)).status_code == 302
    assert [(c["group"], c["field"]) for c in ruleset_draft_specs()[0]["conditions"]] == [(1, "level")]


def test_a_block_of_one_condition_has_no_title(admin_client, live_hot):
    page = text(admin_client.get(change_url(Rule.objects.get(key="hot"))))
    assert '<div class="rules-block-title" hidden>Any of these</div>' in page
    assert 'class="rules-and" hidden>and</div>' in page


def test_a_parameter_is_made_from_its_label_and_picked_by_it(admin_client):
    data = block_ui_post(
        [{"step": 1, "group": 1, "field": "level", "operator": "gte", "parameter": "highest_level"}],
        parameters=[{"label": "Highest level", "kind": "integer", "value": 8, "unit": ""}],
        message="Level {level} over {highest_level}",
    )
    response = admin_client.post(ADD, data)
    assert response.status_code == 302, text(response)[:3000]
    saved = ruleset_draft_specs()[0]
    assert saved["parameters"][0]["name"] == "highest_level"
    assert saved["conditions"][0]["parameter"] == "highest_level"
    page = text(admin_client.get(change_url(Rule.objects.get())))
    assert '<option value="highest_level" selected>Highest level</option>' in page
    assert 'name="parameters-0-name" value="highest_level"' in page and "readonly" in page


def test_a_parameter_without_a_label_or_name_is_refused_once(admin_client):
    data = block_ui_post(
        [{"step": 1, "group": 1, "field": "level", "operator": "gte", "value": "3"}],
        parameters=[{"label": "", "kind": "integer", "value": 8, "unit": ""}],
    )
    page = text(admin_client.post(ADD, data))
    assert MSG_PARAMETER_LABEL in page and page.count('<ul class="errorlist') == 1
    assert not Rule.objects.exists()


@pytest.mark.parametrize("where", ["parameter", "condition"])
def test_a_fraction_for_a_whole_number_gives_one_error_next_to_it(admin_client, where):
    if where == "parameter":
        data = block_ui_post(
            [{"step": 1, "group": 1, "field": "level", "operator": "gte", "parameter": "threshold"}],
            parameters=[{"name": "threshold", "label": "Threshold", "kind": "integer", "value": "5.5", "unit": ""}],
            message="Level {level} over {threshold}",
        )
    else:
        data = block_ui_post([{"step": 1, "group": 1, "field": "level", "operator": "gte", "value": "5.5"}])
    page = text(admin_client.post(ADD, data))
    assert page.count('<ul class="errorlist') == 1
    assert f"><li>{S.MSG_NOT_INTEGER}</li></ul>" in page
    row = page.split('class="param-row row-errors"' if where == "parameter" else 'class="cond-row row-errors"')[1]
    assert S.MSG_NOT_INTEGER in row.split("</tr>")[0]
    assert "neither a field of the matched events nor a parameter" not in page
    assert not Rule.objects.exists()


def test_the_message_and_summary_are_previewed_with_an_example_event(admin_client, live_hot):
    page = text(admin_client.get(change_url(Rule.objects.get(key="hot"))))
    assert (
        '<p class="rules-preview" id="message-preview" aria-live="polite">Temperature '
        '<span class="rules-chip" title="Temperature">31</span> over '
        '<span class="rules-chip" title="Limit">30</span></p>'
    ) in page
    assert '<p class="rules-preview" id="summary-preview" aria-live="polite">Hot</p>' in page  # empty: its name
    spec = {**threshold_spec(40), "summary": "Cool the {room} below {limit} °C"}
    previews = admin_client.post(DESCRIBE, editor_post(spec)).json()
    assert (previews["message_preview"], previews["summary_preview"]) == (
        "Temperature 41 over 40",
        "Cool the kitchen below 40 °C",
    )


def test_a_message_for_readers_of_the_rule_names_the_events_values_and_gives_its_own_numbers():
    spec = {
        **threshold_spec(40),
        "conditions": [cond("temperature", "gt", parameter="limit"), cond("alarm", "eq", True, group=2)],
        "message": "{temperature} over {limit} in the {room} ({matched}), {cooldown_days} days apart",
        "cooldown_days": 3,
    }
    assert spec_when(spec) == "When a reading has temperature over 40 °C and “alarm”: yes"
    assert message_named(spec) == (
        "[temperature] over 40 in the [room] ([temperature and/or alarm, with the value]), 3 days apart"
    )
    spec["conditions"][1] = cond("alarm", "eq", False, group=2)  # a sign that is absent names nothing
    assert message_named(spec, "{matched}") == "[temperature with its value]"


def test_the_editor_gives_its_script_the_ranges_and_the_words_of_the_live_checks(admin_client):
    page = admin_client.get(ADD).content.decode()
    catalog = json.loads(page.split('<script id="rules-catalog" type="application/json">')[1].split("</script>")[0])
    level = next(f for f in catalog["fact_types"][0]["fields"] if f["name"] == "level")
    assert (level["kind"], level["min"], level["max"]) == ("integer", 0, 10)
    assert catalog["messages"] == LIVE_CHECK_MESSAGES and catalog["messages"]["integer"] == S.MSG_NOT_INTEGER
    assert LIVE_CHECK_MESSAGES["outside"].format(value=15, low=0, high=10) == "15 is outside 0–10."
    placeholders = {s["name"] for s in catalog["settings"]}
    assert placeholders == {"count", "window_days", "window_hours", "cooldown_days", S.MATCHED_PLACEHOLDER} | set(
        S.REFERRAL_PLACEHOLDERS
    )


def test_adding_a_rule_with_a_used_key_is_refused(admin_client, live_hot):
    page = admin_client.post(ADD, editor_post(threshold_spec(99))).content.decode()
    assert MSG_KEY_TAKEN in page
    assert Rule.objects.get(key="hot").parameters.get().value == "30"


def test_the_key_of_a_saved_rule_is_fixed(admin_client, live_hot):
    rule = Rule.objects.get(key="hot")
    page = text(admin_client.get(change_url(rule)))
    assert '<div class="readonly rules-key" id="rule-key">hot</div>' in page and 'name="key"' not in page
    assert KEY_FIXED_HELP in page
    renamed = editor_post({**threshold_spec(31), "key": "renamed"}, revision=rule.revision)
    assert admin_client.post(change_url(rule), renamed).status_code == 302  # the posted key is ignored
    rule.refresh_from_db()
    assert (rule.key, rule.parameters.get().value) == ("hot", "31")
    assert not Rule.objects.filter(key="renamed").exists()


def test_the_service_refuses_to_change_the_key_of_a_saved_rule(live_hot, admin_user):
    rule = Rule.objects.get(key="hot")
    with pytest.raises(S.RuleValidationError) as refused:
        services.rule_save(spec={**threshold_spec(31), "key": "renamed"}, rule=rule, user=admin_user)
    assert refused.value.errors == {"key": [MSG_KEY_FIXED]}
    assert Rule.objects.get().key == "hot"


def test_second_concurrent_save_is_refused_with_a_clear_message(admin_client, live_hot, admin_user):
    rule = Rule.objects.get(key="hot")
    other = User.objects.create_superuser("other", "o@example.com", "pw")
    loaded = rule.revision  # both clinicians opened the editor at this revision
    first = admin_client.post(change_url(rule), editor_post(threshold_spec(31), revision=loaded))
    assert first.status_code == 302
    admin_client.force_login(other)
    second = admin_client.post(change_url(rule), editor_post(threshold_spec(45), revision=loaded))
    assert second.status_code == 200
    page = second.content.decode()
    assert MSG_CONFLICT.format(mine=loaded, theirs=loaded + 1).replace("’", "&#x27;")[:60] in page
    assert Rule.objects.get(key="hot").parameters.get().value == "31"  # never silently overwritten


def test_sentence_follows_the_unsaved_form(admin_client, live_hot):
    response = admin_client.post(DESCRIBE, editor_post(threshold_spec(42)))
    assert response.json()["sentence"].startswith("When a reading has temperature over 42 °C: urgent")
    assert Rule.objects.get(key="hot").parameters.get().value == "30"


def test_the_sentence_shows_numbers_never_placeholders(admin_client, live_hot):
    page = text(admin_client.get(change_url(Rule.objects.get(key="hot"))))
    # {limit} is the parameter's value; {temperature} a value that meets the condition ("over 30").
    assert "When a reading has temperature over 30 °C: urgent — “Temperature 31 over 30”" in page
    spec = {
        **threshold_spec(42),
        "message": "{temperature} °C in the {room}, {count} reading, cooldown {cooldown_days}",
    }
    sentence = admin_client.post(DESCRIBE, editor_post(spec)).json()["sentence"]
    assert "“43 °C in the kitchen, 1 reading, cooldown 0”" in sentence
    assert "{" not in sentence


def test_the_delete_confirmation_says_only_the_draft_changes(admin_client, live_hot, admin_user):
    hot = Rule.objects.get(key="hot")
    page = text(admin_client.get(reverse("admin:rules_rule_delete", args=[hot.pk])))
    assert MSG_DELETE_LIVE.format(subjects="thermostats", rules="“Hot”") in page
    assert (
        "Deleting changes only the draft: thermostats keep getting advice from “Hot” until the draft is published."
        in page
    )
    # The rule in its plain sentence, never its rows ("Rule condition: temperature gt limit").
    assert "When a reading has temperature over 30 °C: urgent" in page and "Rule condition" not in page
    services.rule_save(spec=make_spec("cold", conditions=[cond("temperature", "lt", 5)]), user=admin_user)
    cold = Rule.objects.get(key="cold")
    page = text(admin_client.get(reverse("admin:rules_rule_delete", args=[cold.pk])))
    assert "“Cold” is not live: deleting changes only the draft." in page
    both = {"action": "delete_selected", "_selected_action": [hot.pk, cold.pk]}
    page = text(admin_client.post(LIST, both))
    assert "thermostats keep getting advice from “Hot” until the draft is published" in page
    assert "When a reading has temperature under 5 °C" in page and "Rule step" not in page
    admin_client.post(LIST, {**both, "post": "yes"})
    assert not Rule.objects.exists() and RuleChange.objects.filter(action="deleted").count() == 2
    assert RulesetVersion.objects.get().snapshot[0]["key"] == "hot"  # live is untouched


def test_deleting_a_rule_is_audited(admin_client, live_hot):
    rule = Rule.objects.get(key="hot")
    admin_client.post(reverse("admin:rules_rule_delete", args=[rule.pk]), {"post": "yes"})
    assert not Rule.objects.exists()
    assert RuleChange.objects.filter(rule_key="hot", action="deleted").exists()


# -- publish and roll back --------------------------------------------------------------------------
def test_publish_makes_an_immutable_version_with_the_comment(admin_client, client, live_hot, admin_user):
    services.rule_save(spec=threshold_spec(35), user=admin_user)
    page = admin_client.get(PUBLISH).content.decode()
    assert "Parameter “Limit”" in page and "30 °C" in page and "35 °C" in page
    response = admin_client.post(PUBLISH, {"comment": "Fewer false alarms"})
    assert response.status_code == 302 and RulesetVersion.objects.count() == 1  # asked, not yet live
    assert admin_client.post(response["Location"], {"_approve": "1"}).status_code == 200  # not by its author
    client.force_login(User.objects.create_superuser("second", "s@example.com", "pw"))
    assert client.post(response["Location"], {"_approve": "1"}).status_code == 302
    live = RulesetVersion.objects.get(number=2)
    assert live.comment == "Fewer false alarms" and live.created_by == admin_user
    assert live.snapshot[0]["parameters"][0]["value"] == 35


def test_publishing_an_unchanged_draft_is_refused(admin_client, live_hot):
    page = admin_client.post(PUBLISH, {"comment": "again"}).content.decode()
    assert MSG_NOTHING_TO_PUBLISH in page
    assert RulesetVersion.objects.count() == 1


def test_roll_back_republishes_an_earlier_version(admin_client, live_hot, admin_user, no_sign_off):
    services.rule_save(spec=threshold_spec(35), user=admin_user)
    services.ruleset_publish(user=admin_user, comment="second")
    preview = admin_client.get(ROLLBACK, {"version": 1}).content.decode()
    assert "35 °C" in preview and "30 °C" in preview
    response = admin_client.post(ROLLBACK, {"version": 1, "comment": "", "_confirm": "1"})
    assert response.status_code == 302
    live = RulesetVersion.objects.order_by("-number").first()
    assert (live.number, live.rolled_back_from) == (3, 1)
    assert live.snapshot == RulesetVersion.objects.get(number=1).snapshot
    assert Rule.objects.get(key="hot").parameters.get().value == "30"


def test_version_page_shows_a_readable_diff(admin_client, live_hot, admin_user):
    services.rule_save(spec=threshold_spec(35), user=admin_user)
    version = services.ruleset_publish(user=admin_user, comment="second")
    page = admin_client.get(reverse("admin:rules_rulesetversion_change", args=[version.pk])).content.decode()
    assert "Parameter “Limit”" in page and "30 °C" in page and "35 °C" in page
    listing = admin_client.get(reverse("admin:rules_rulesetversion_changelist")).content.decode()
    assert "1 changed" in listing and "1 added" in listing
    changes = admin_client.get(reverse("admin:rules_rulechange_changelist")).content.decode()
    assert "Parameter “Limit”: 30 °C → 35 °C" in changes


def test_version_list_marks_the_live_version_in_a_fixed_number_of_queries(admin_client, live_hot, admin_user):
    url = reverse("admin:rules_rulesetversion_changelist")
    with CaptureQueriesContext(connection) as one_version:
        admin_client.get(url)
    for limit in (31, 32, 33):
        services.rule_save(spec=threshold_spec(limit), user=admin_user)
        services.ruleset_publish(user=admin_user, comment=f"limit {limit}")
    with CaptureQueriesContext(connection) as four_versions:
        listing = admin_client.get(url).content.decode()
    assert len(four_versions) == len(one_version)
    assert listing.count("rule-status-live") == 1 and listing.count("1 changed") == 3


# -- packs --------------------------------------------------------------------------------------
def test_export_then_import_gives_the_identical_ruleset(admin_client, live_hot, admin_user):
    services.rule_save(spec=make_spec("cold", conditions=[cond("temperature", "lt", 5)]), user=admin_user)
    services.ruleset_publish(user=admin_user, comment="two rules")
    exported = admin_client.get(EXPORT)
    assert exported["Content-Disposition"].startswith("attachment;")
    text = exported.content.decode()
    services.rule_save(spec=threshold_spec(99), user=admin_user)  # drift the draft away
    Rule.objects.get(key="cold").delete()
    preview = admin_client.post(IMPORT, {"pack": _upload(text)}).content.decode()
    assert "1 added, 1 changed" in preview and "Apply as the draft" in preview
    applied = admin_client.post(IMPORT, {"pack_text": text, "_apply": "1"})
    assert applied.status_code == 302
    assert [spec_normalize(s) for s in ruleset_draft_specs()] == json.loads(text)["rules"]
    services.ruleset_publish(user=admin_user, comment="imported")
    assert pack_export()["rules"] == json.loads(text)["rules"]


def test_import_rejects_a_broken_pack_and_changes_nothing(admin_client, live_hot):
    page = admin_client.post(IMPORT, {"pack": _upload('{"rules": []}')}).content.decode()
    assert MSG_PACK_FORMAT.replace("“", "&ldquo;")[:20] in page or "not a rule pack" in page
    bad = {"format": "rules-pack", "format_version": 1, "rules": [make_spec(severity="purple")]}
    page = admin_client.post(IMPORT, {"pack": _upload(json.dumps(bad))}).content.decode()
    assert "Rule “hot”, severity" in page and "is not a severity" in page
    assert Rule.objects.get(key="hot").severity == "urgent"


def _upload(text: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("pack.json", text.encode(), content_type="application/json")


# -- try it, simulate, statistics ----------------------------------------------------------------
def test_try_it_shows_which_rules_fire_with_values_and_message(admin_client, live_hot, source):
    rule = Rule.objects.get(key="hot")
    url = reverse("admin:rules_rule_try_one", args=[rule.pk])
    assert "Temperature (°C)" in admin_client.get(url).content.decode()
    page = admin_client.post(
        url,
        {
            "fact_type": "reading",
            "_shown_type": "reading",
            "scope": "rule",
            "occurred_at": "2026-01-10 08:00",
            "data_temperature": "33",
            "subject": "a",
        },
    ).content.decode()
    assert "Temperature 33 over 30" in page
    assert "Temperature = <b>33 °C</b>" in page and "parameter Limit = <b>30 °C</b>" in page
    page = admin_client.post(
        url,
        {
            "fact_type": "reading",
            "_shown_type": "reading",
            "scope": "rule",
            "occurred_at": "2026-01-10 08:00",
            "data_temperature": "12",
        },
    ).content.decode()
    assert "No rule gives advice." in page


def test_one_rule_is_tried_on_its_own_whatever_safety_critical_rules_the_domain_has(admin_client, live_hot, source):
    """A ruleset must hold the safety-critical rules to be published, not to be tried."""
    alarm = make_spec("alarm-call", [cond("alarm", "eq", True)], severity="critical", message="Alarm")
    registry.register_safety_critical(lambda: [alarm])
    try:
        response = admin_client.post(
            reverse("admin:rules_rule_try_one", args=[Rule.objects.get(key="hot").pk]),
            {
                "fact_type": "reading",
                "_shown_type": "reading",
                "scope": "rule",
                "occurred_at": "2026-01-10 08:00",
                "data_temperature": "33",
                "subject": "a",
            },
        )
    finally:
        registry.register_safety_critical(lambda: ())
    assert response.status_code == 200
    assert "Temperature 33 over 30" in response.content.decode()


def test_simulation_counts_advice_that_would_appear_disappear_or_change(admin_user, live_hot, source):
    services.rule_save(spec=threshold_spec(35), user=admin_user)  # stricter: 31 and 33 no longer fire
    services.rule_save(
        spec=make_spec("mild", conditions=[cond("temperature", "lt", 25)], message="Mild"), user=admin_user
    )
    result = simulation.ruleset_simulate(days=30)
    assert result.events == 5 and result.subjects == 3
    hot = {r.key: r for r in result.rules}["hot"]
    assert (hot.live, hot.draft, hot.appear, hot.disappear, hot.change) == (4, 2, 0, 2, 2)
    assert hot.examples["disappear"] == ["Group a", "Group b"]
    mild = {r.key: r for r in result.rules}["mild"]
    assert (mild.live, mild.draft, mild.appear, mild.in_live) == (0, 1, 1, False)


def test_simulation_page_shows_the_result(admin_client, admin_user, live_hot, source):
    services.rule_save(spec=threshold_spec(35), user=admin_user)
    response = admin_client.post(SIMULATE, {"days": 30})
    assert response.status_code == 302 and "?job=" in response["Location"]  # kept, so its rows can be linked
    page = text(admin_client.get(response["Location"]))
    assert "2 would disappear" in page and 'data-rule="hot"' in page
    rows = page.split('id="simulation-rows"')[1]
    assert "Group a" in rows and "Group b" in rows
    assert "<a href" not in rows.split('data-rule="hot"')[1].split("</td>")[0]  # no page of its own: no link


@pytest.fixture
def linked_source(source, monkeypatch):
    """The source with a page of its own for each subject (``FactSource.subject_url``)."""
    monkeypatch.setattr(source, "subject_url", lambda subject_id: f"/thermostats/{subject_id}/", raising=False)
    return source


def test_simulation_rows_link_to_the_subjects_own_page(admin_client, admin_user, live_hot, linked_source):
    services.rule_save(spec=threshold_spec(35), user=admin_user)
    page = text(admin_client.post(SIMULATE, {"days": 30}, follow=True))
    rows = page.split('id="simulation-rows"')[1]
    assert '<a href="/thermostats/a/">Group a</a>' in rows and '<a href="/thermostats/b/">Group b</a>' in rows


def test_try_it_links_the_chosen_subject_to_its_own_page(admin_client, admin_user, live_hot, linked_source):
    page = text(admin_client.post(TRY, try_data(35, subject="a")))
    assert '<a href="/thermostats/a/" id="try-subject-link">Group a</a>' in page
    assert 'id="try-subject-link"' not in text(admin_client.post(TRY, try_data(35, subject="")))


def test_a_fact_source_has_no_subject_pages_unless_it_says_so():
    assert FactSource().subject_url("a") is None


def test_long_simulation_runs_on_the_task_queue_with_progress(
    transactional_db, admin_client, admin_user, live_hot, source, monkeypatch
):
    monkeypatch.setattr(simulation, "BACKGROUND_ABOVE", 1)
    services.rule_save(spec=threshold_spec(35), user=admin_user)
    response = admin_client.post(SIMULATE, {"days": 30})
    assert response.status_code == 302 and "?job=" in response["Location"]
    job_id = response["Location"].split("job=")[1]
    status_url = reverse("admin:rules_rule_simulate_status", args=[job_id])
    assert admin_client.get(status_url).json() == {
        "done": 0,
        "total": 0,
        "finished": False,
        "status": "waiting for a worker",
        "error": "",
    }
    assert "Waiting for a worker" in admin_client.get(response["Location"]).content.decode()

    call_command("worker", "--batch", verbosity=0)

    assert admin_client.get(status_url).json() == {
        "done": 5,
        "total": 5,
        "finished": True,
        "status": "finished",
        "error": "",
    }
    assert "2 would disappear" in admin_client.get(response["Location"]).content.decode()


def test_a_simulation_that_is_not_there_answers_not_found(admin_client, live_hot, source):
    for job_id in ("not-a-job", "00000000-0000-0000-0000-000000000000"):
        assert admin_client.get(f"{SIMULATE}?job={job_id}").status_code == 404
        assert admin_client.get(reverse("admin:rules_rule_simulate_status", args=[job_id])).status_code == 404


def test_statistics_show_advice_per_rule_with_a_chart(admin_client, live_hot, source):
    page = admin_client.get(reverse("admin:rules_rule_statistics")).content.decode()
    assert "<svg" in page and 'data-rule="hot"' in page
    assert "<b>5</b> pieces of advice given" in page  # the last 30 days by default


def test_try_and_simulate_explain_when_no_domain_source_is_registered(admin_client, live_hot):
    previous = registry.fact_source()
    registry.register_fact_source(None)
    try:
        assert simulation.MSG_NO_FACT_SOURCE in admin_client.get(SIMULATE).content.decode()
        assert simulation.MSG_NO_FACT_SOURCE in admin_client.get(reverse("admin:rules_rule_try")).content.decode()
    finally:
        registry.register_fact_source(previous)


# -- permissions ----------------------------------------------------------------------------------
def test_publishing_needs_the_add_version_permission(client, live_hot):
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename__in=["view_rule", "change_rule"]))
    client.force_login(viewer)
    assert client.get(LIST).status_code == 200
    assert client.post(PUBLISH, {"comment": "x"}).status_code == 403
    assert client.post(ROLLBACK, {"version": 1, "_confirm": "1"}).status_code == 403
    assert RulesetVersion.objects.count() == 1


def test_a_list_action_without_its_permission_answers_403_and_changes_nothing(client, live_hot):
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename="view_rule"))
    client.force_login(viewer)
    hot, changes = Rule.objects.get(key="hot"), RuleChange.objects.count()
    for action in ("disable_rules", "delete_selected"):
        response = client.post(LIST, {"action": action, "_selected_action": [hot.pk], "post": "yes"})
        assert response.status_code == 403
    assert Rule.objects.get(key="hot").enabled and RuleChange.objects.count() == changes


def test_publishing_alone_shows_neither_roll_back_nor_import(client, live_hot):
    """Rolling back and importing also need the rights to add, change and delete rules."""
    publisher = User.objects.create_user("publisher", password="pw", is_staff=True)
    publisher.user_permissions.add(*Permission.objects.filter(codename__in=["view_rule", "add_rulesetversion"]))
    client.force_login(publisher)
    page = client.get(LIST).content.decode()
    assert "Publish" in page and "Roll back" not in page and "Import pack" not in page
    assert client.get(ROLLBACK).status_code == 403 and client.get(IMPORT).status_code == 403


def test_simulation_judges_each_timeline_from_its_first_fact(admin_user, live_hot, source):
    """Worked by hand: a cooldown of 36 days counts from advice given before the simulated days."""
    services.rule_save(spec={**threshold_spec(30), "cooldown_days": 36}, user=admin_user)
    result = simulation.ruleset_simulate(days=30)
    # Group a: 50 °C 40 days ago (advice, before the simulated days), 31 °C 5 days ago (35 days
    # later: cooling down), 36 °C 3 days ago (37 days later: advice). b: 33 °C. c: 40 °C.
    hot = {r.key: r for r in result.rules}["hot"]
    assert (hot.live, hot.draft, hot.appear, hot.disappear, hot.change) == (4, 3, 0, 1, 0)
    assert hot.held == {evaluation.HELD_COOLDOWN: 1}
    assert hot.examples["disappear"] == ["Group a"]
    by_temperature = {f.data["temperature"]: f.id for f in source.facts}
    assert result.predicted[by_temperature[31]] == []
    assert result.predicted[by_temperature[36]] == ["hot"]
    assert by_temperature[50] not in result.predicted  # before the simulated days: history only


def test_simulation_counts_what_judging_each_timeline_gives(admin_user):
    """Over 300 facts of three subjects, with cooldowns, patterns, precedence and the limit, the
    simulation counts exactly the advice that judging each subject's timeline gives."""
    now = timezone.now()
    since = now - dt.timedelta(days=10)
    live_specs = [
        threshold_spec(30),
        make_spec(
            "then-visit",
            pattern="sequence",
            window_hours=24,
            message="Visit after heat",
            steps=[{"fact_type": "reading"}, {"fact_type": "visit"}],
            conditions=[cond("temperature", "gt", 35), cond("minutes", "gte", 10, step=2)],
        ),
        make_spec(
            "three-hot",
            pattern="count",
            count=3,
            window_hours=48,
            message="{count} hot readings",
            cooldown_days=1,
            conditions=[cond("temperature", "gt", 32)],
        ),
    ]
    draft_specs = [
        {**threshold_spec(34), "severity": "note"},
        {**live_specs[1], "window_hours": 12},
        {**live_specs[2], "cooldown_days": 2, "holds_back_lower": True},
        make_spec("warm", severity="note", conditions=[cond("temperature", "gt", 28)], message="Warm"),
    ]
    facts = []
    for i in range(300):
        kind = "visit" if i % 4 == 3 else "reading"
        data = {"minutes": (i * 7) % 30} if kind == "visit" else {"temperature": 25 + (i * 13) % 20}
        at = now - dt.timedelta(hours=300 - i * 0.9)
        facts.append(Fact(id=str(i), type=kind, occurred_at=at, data=data, group=f"g{i % 3}"))
    timelines = list(MemorySource(facts).timelines(since=since))
    data = simulation.SimulationInput(
        since=since,
        days=10,
        live_version=1,
        live_specs=services.ruleset_check(live_specs),
        draft_specs=draft_specs,
        timelines=timelines,
        draft_settings={"advice_limit": 1},
    )
    result = {r.key: r for r in simulation.simulation_run(data).rules}

    def judged(specs, settings=None):
        given: dict[str, set[str]] = {}
        held: dict[str, dict[str, int]] = {}
        with evaluation.Evaluator(specs=specs, settings=settings) as evaluator:
            for timeline, _ in timelines:
                for decision in evaluator.judge(timeline):
                    if decision.fact.occurred_at < since:
                        continue
                    for match in decision.given:
                        given.setdefault(match.rule_key, set()).add(decision.fact.id)
                    for h in decision.held_back:
                        reasons = held.setdefault(h.match.rule_key, {})
                        reasons[h.reason] = reasons.get(h.reason, 0) + 1
        return given, held

    (live, _), (draft, draft_held) = judged(live_specs), judged(draft_specs, {"advice_limit": 1})
    for key in ("hot", "then-visit", "three-hot", "warm"):
        mine, theirs = draft.get(key, set()), live.get(key, set())
        impact = result[key]
        assert (impact.live, impact.draft) == (len(theirs), len(mine)), key
        assert (impact.appear, impact.disappear) == (len(mine - theirs), len(theirs - mine)), key
        assert impact.held == draft_held.get(key, {}), key
    assert result["hot"].disappear > 0 and result["warm"].appear > 0
    assert result["three-hot"].held.get(evaluation.HELD_COOLDOWN, 0) > 0
    assert result["warm"].held.get(evaluation.HELD_LIMIT, 0) > 0
    assert result["hot"].held.get(evaluation.HELD_PRECEDENCE, 0) > 0
    assert result["then-visit"].live > 0


# -- the policy fields in the editor ---------------------------------------------------------------
SETTINGS = reverse("admin:rules_rule_settings")


def text(response) -> str:
    """A page as a clinician reads it (entities such as &#x27; decoded)."""
    return html.unescape(response.content.decode())


def test_editor_shows_the_policy_fields_in_the_domains_words(admin_client):
    page = text(admin_client.get(ADD))
    for label in ("Summary", "Holds back lower advice", "Refers the thermostat", "Priority", "Cooldown"):
        assert f">{label}:</label>" in page, label
    assert "0 of 140 characters" in page
    assert "only advice at least as urgent as “Urgent” is given" in page
    assert 'name="priority" value="100"' in page
    assert "At most 3 pieces of advice per event in the draft" in page


def test_editor_saves_summary_holding_back_referral_and_priority(admin_client):
    spec = {
        **alarm_spec(),
        "summary": "Call the engineer about {room}",
        "holds_back_lower": True,
        "refers": True,
        "priority": 7,
    }
    response = admin_client.post(ADD, editor_post(spec))
    assert response.status_code == 302, text(response)[:3000]
    saved = ruleset_draft_specs()[0]
    assert (saved["summary"], saved["holds_back_lower"], saved["refers"], saved["priority"]) == (
        "Call the engineer about {room}",
        True,
        True,
        7,
    )
    page = text(admin_client.get(change_url(Rule.objects.get())))
    assert 'value="Call the engineer about [Room]"' in page and "30 of 140 characters" in page
    assert 'id="id_holds_back_lower" checked>' in page and 'id="id_refers" checked>' in page
    unticked = editor_post({**spec, "holds_back_lower": False, "refers": False}, revision=1)
    assert admin_client.post(change_url(Rule.objects.get()), unticked).status_code == 302
    saved = ruleset_draft_specs()[0]
    assert (saved["holds_back_lower"], saved["refers"]) == (False, False)


def alarm_spec(**overrides) -> dict:
    fields = {"severity": "critical", "conditions": [cond("alarm", "eq", True)], "message": "Alarm", **overrides}
    return make_spec("alarm", **fields)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"summary": "x" * 141}, S.MSG_SUMMARY_LENGTH),
        ({"summary": "Check {colour}"}, "The summary names “colour”"),
        ({"priority": 5000}, S.MSG_PRIORITY),
        ({"cooldown_days": 999999999}, S.MSG_COOLDOWN),
        ({"severity": "note", "refers": True}, S.MSG_REFERS_SEVERITY.format(floor="Urgent", subject="thermostat")),
        ({"pattern": "count", "count": 10**9, "window_hours": 24}, S.MSG_COUNT_MAX),
        ({"pattern": "count", "count": 3, "window_hours": 1e9}, S.MSG_WINDOW_MAX),
    ],
)
def test_editor_refuses_out_of_bounds_values_with_a_message_and_saves_nothing(admin_client, change, message):
    response = admin_client.post(ADD, editor_post(alarm_spec(**change)))
    assert response.status_code == 200
    assert message in text(response)
    assert not Rule.objects.exists()


# -- ruleset settings --------------------------------------------------------------------------------
def test_clinician_edits_the_most_advice_per_event_and_publishes_it(admin_client, live_hot, admin_user, no_sign_off):
    page = text(admin_client.get(SETTINGS))
    assert "Most pieces of advice per event" in page and 'value="3"' in page
    assert "Live version 1" in page
    response = admin_client.post(SETTINGS, {"advice_limit": "1"})
    assert response.status_code == 302
    assert ruleset_draft_settings() == {"advice_limit": 1}
    assert MSG_SETTINGS_SAVED in text(admin_client.get(response["Location"]))
    assert RulesetVersion.objects.get().settings == {"advice_limit": 3}  # live is untouched
    listing = text(admin_client.get(LIST))
    assert "Draft: settings changed (not live until published)" in listing
    preview = text(admin_client.get(PUBLISH))
    assert "Most pieces of advice per event" in preview and 'class="diff-before">3<' in preview
    assert 'class="diff-after">1<' in preview
    assert admin_client.post(PUBLISH, {"comment": "one piece of advice per event"}).status_code == 302
    live = RulesetVersion.objects.get(number=2)
    assert live.settings == {"advice_limit": 1} and live.snapshot == RulesetVersion.objects.get(number=1).snapshot
    services.rule_save(spec=threshold_spec(30, key="also-hot"), user=admin_user)
    services.ruleset_publish(user=admin_user, comment="two rules")
    decisions = evaluation.timeline_judge(
        facts=[Fact(id="f", type="reading", occurred_at=T0, data={"temperature": 40})]
    )
    assert [m.rule_key for m in decisions[0].given] == ["also-hot"]
    assert [h.reason for h in decisions[0].held_back] == [evaluation.HELD_LIMIT]
    version = text(admin_client.get(reverse("admin:rules_rulesetversion_change", args=[live.pk])))
    assert "Most pieces of advice per event" in version
    listing = text(admin_client.get(reverse("admin:rules_rulesetversion_changelist")))
    assert "settings changed" in listing


@pytest.mark.parametrize("value", ["0", "21", "1000000000", "two", ""])
def test_an_out_of_bounds_limit_is_refused(admin_client, live_hot, value):
    page = text(admin_client.post(SETTINGS, {"advice_limit": value}))
    assert "Please correct the errors below." in page
    assert ruleset_draft_settings() == {"advice_limit": 3}


def test_rolling_back_restores_the_settings_of_the_version(admin_client, live_hot, admin_user, no_sign_off):
    services.ruleset_settings_save(settings={"advice_limit": 5}, user=admin_user)
    services.ruleset_publish(user=admin_user, comment="five")
    preview = text(admin_client.get(ROLLBACK, {"version": 1}))
    assert "Most pieces of advice per event" in preview
    assert 'class="diff-before">5<' in preview and 'class="diff-after">3<' in preview
    admin_client.post(ROLLBACK, {"version": 1, "comment": "", "_confirm": "1"})
    assert RulesetVersion.objects.order_by("-number").first().settings == {"advice_limit": 3}
    assert ruleset_draft_settings() == {"advice_limit": 3}


def test_settings_can_be_seen_but_not_changed_without_the_change_permission(client, live_hot):
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename="view_rule"))
    client.force_login(viewer)
    page = text(client.get(SETTINGS))
    assert "Most pieces of advice per event" in page and "Save to draft" not in page
    assert client.post(SETTINGS, {"advice_limit": "1"}).status_code == 403
    assert ruleset_draft_settings() == {"advice_limit": 3}


# -- try it and simulation explain what was held back ----------------------------------------------
TRY = reverse("admin:rules_rule_try")


def try_data(temperature: float, *, subject: str) -> dict[str, str]:
    return {
        "fact_type": "reading",
        "_shown_type": "reading",
        "occurred_at": timezone.localtime().strftime("%Y-%m-%d %H:%M"),
        "data_temperature": str(temperature),
        "subject": subject,
    }


def test_try_it_shows_advice_held_back_by_a_cooldown_with_the_date_of_the_last_advice(admin_client, admin_user, source):
    services.rule_save(spec={**threshold_spec(30), "cooldown_days": 7}, user=admin_user)
    last = next(f for f in source.facts if f.data["temperature"] == 31)  # 5 days ago: the last advice
    page = text(admin_client.post(TRY, try_data(35, subject="a")))
    assert "The draft: 0 pieces of advice" in page and "Held back: 1" in page
    expected = evaluation.MSG_HELD_COOLDOWN.format(date=evaluation.date_words(last.occurred_at), days=7, plural="s")
    assert expected in page


def test_try_it_shows_which_rule_held_advice_back(admin_client, admin_user, source):
    services.rule_save(
        spec=make_spec(
            "boiling", severity="critical", holds_back_lower=True, conditions=[cond("temperature", "gt", 40)]
        ),
        user=admin_user,
    )
    services.rule_save(spec=threshold_spec(30), user=admin_user)
    page = text(admin_client.post(TRY, try_data(45, subject="")))
    assert "The draft: 1 piece of advice" in page
    assert evaluation.MSG_HELD_PRECEDENCE.format(rule="Boiling") in page
    assert "Would have said: “Temperature 45 over 30”" in page


def test_try_it_shows_the_events_a_pattern_matched_with_dates_and_values(admin_client, admin_user, source):
    services.rule_save(
        spec=make_spec(
            "hot-streak",
            pattern="count",
            count=3,
            window_hours=7 * 24,
            conditions=[cond("temperature", "gt", 30)],
            message="{count} hot readings",
        ),
        user=admin_user,
    )
    page = text(admin_client.post(TRY, try_data(35, subject="a")))
    assert "3 hot readings" in page
    for fact in source.facts:
        if fact.group == "a" and fact.data["temperature"] in (31, 36):
            assert (
                f"<td>{moment_words(fact.occurred_at)}</td><td>temperature {fact.data['temperature']} °C</td>" in page
            )


def test_simulation_page_shows_held_back_counts_per_rule_in_words(admin_client, admin_user, live_hot, source):
    services.rule_save(spec={**threshold_spec(30), "cooldown_days": 36}, user=admin_user)
    page = text(admin_client.post(SIMULATE, {"days": 30}, follow=True))
    row = page.split('data-rule="hot"')[1].split("</tr>")[0]
    assert '<td class="held">1 cooling down</td>' in row


def test_the_sentence_says_when_a_rule_holds_back_and_refers(admin_client):
    response = admin_client.post(DESCRIBE, editor_post(alarm_spec(holds_back_lower=True, refers=True, cooldown_days=2)))
    assert response.json()["sentence"] == (
        "When a reading has “alarm”: yes: critical — “Alarm” (at most once every 2 days); "
        "it holds back less urgent advice on the same event and refers the thermostat"
    )
