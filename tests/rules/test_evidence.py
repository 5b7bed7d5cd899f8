"""Evidence on every rule: what its advice rests on and when a clinician should look at it again,
in the editor, the rules list, rule packs and on the admin's index page."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from rules import services
from rules import spec as S
from rules.models import Rule
from rules.packs import pack_export, pack_read, ruleset_diff
from rules.selectors import rule_spec, rules_past_review, ruleset_draft_specs
from tests.rules.conftest import make_spec
from tests.rules.editor_data import editor_post

pytestmark = pytest.mark.django_db

LIST = reverse("admin:rules_rule_changelist")
ADD = reverse("admin:rules_rule_add")


def test_a_rule_rests_on_expert_opinion_and_is_reviewed_a_year_after_it_changed_unless_told_otherwise():
    normalized = S.spec_normalize(make_spec())
    assert (normalized["evidence_level"], normalized["review_by"]) == ("expert opinion", None)
    assert S.review_due(None, dt.date(2026, 3, 1)) == dt.date(2027, 3, 1)
    assert S.review_due("2026-06-30", dt.date(2026, 3, 1)) == dt.date(2026, 6, 30)
    given = S.spec_normalize(make_spec(evidence_level="study", review_by=dt.date(2026, 6, 30)))
    assert (given["evidence_level"], given["review_by"]) == ("study", "2026-06-30")


def test_an_unknown_level_or_a_date_that_is_no_date_is_refused():
    errors = S.spec_validate(make_spec(evidence_level="hearsay", review_by="next spring"))
    assert errors["evidence_level"] == [S.MSG_EVIDENCE.format(choices="guideline, study, article, expert opinion")]
    assert errors["review_by"] == [S.MSG_REVIEW_BY]


def test_evidence_is_saved_published_and_exported_and_a_pack_without_it_still_imports(admin_user):
    services.rule_save(spec=make_spec(evidence_level="guideline", review_by="2027-01-31"), user=admin_user)
    assert (Rule.objects.get().evidence_level, Rule.objects.get().review_by) == ("guideline", dt.date(2027, 1, 31))
    services.ruleset_publish(user=admin_user, comment="first")
    exported = pack_export()
    assert (exported["rules"][0]["evidence_level"], exported["rules"][0]["review_by"]) == ("guideline", "2027-01-31")
    old = json.loads(json.dumps(exported))
    for rule in old["rules"]:
        del rule["evidence_level"], rule["review_by"]
    read = pack_read(json.dumps(old))
    assert (read.rules[0]["evidence_level"], read.rules[0]["review_by"]) == ("expert opinion", None)


def test_the_diff_says_the_evidence_in_words():
    before = S.spec_normalize(make_spec())
    after = {**before, "evidence_level": "guideline", "review_by": "2027-01-31"}
    [rule] = ruleset_diff([before], [after]).rules
    assert ("Evidence", "Expert opinion", "Guideline") in rule.changes
    assert ("Review by", "a year after its last change", "31 Jan 2027") in rule.changes


def test_the_editor_saves_evidence_and_a_review_date(admin_client):
    spec = make_spec(evidence_level="article", review_by="2027-05-01")
    assert admin_client.post(ADD, editor_post(spec)).status_code == 302
    saved = ruleset_draft_specs()[0]
    assert (saved["evidence_level"], saved["review_by"]) == ("article", "2027-05-01")
    page = admin_client.get(reverse("admin:rules_rule_change", args=[Rule.objects.get().pk])).content.decode()
    assert "Due for review on 1 May 2027." in page


def test_a_new_rule_gets_its_key_from_its_name(admin_client):
    spec = make_spec(name="Hot in the attic")
    spec.pop("key")
    assert admin_client.post(ADD, editor_post({**spec, "key": ""})).status_code == 302
    assert admin_client.post(ADD, editor_post({**spec, "key": ""})).status_code == 302
    assert sorted(Rule.objects.values_list("key", flat=True)) == ["hot-in-the-attic", "hot-in-the-attic-2"]


def test_the_list_leads_with_names_and_sorts_and_filters_by_evidence_and_review(admin_client, admin_user):
    services.rule_save(spec=make_spec("hot", name="Hot", evidence_level="guideline"), user=admin_user)
    services.rule_save(spec=make_spec("warm", name="Warm", review_by="2020-01-01"), user=admin_user)
    page = admin_client.get(LIST).content.decode()
    assert '<th class="field-name_and_key"><a href="/admin/rules/rule/' in page
    assert 'Hot <span class="rules-key">hot</span>' in page
    assert "1 Jan 2020 (past)" in page
    guidelines = admin_client.get(LIST, {"evidence": "guideline"}).content.decode()
    assert ">Hot <span" in guidelines and ">Warm <span" not in guidelines
    past = admin_client.get(LIST, {"review": "past"}).content.decode()
    assert ">Warm <span" in past and ">Hot <span" not in past
    by_review = admin_client.get(LIST, {"o": "6"}).content.decode()  # the review column, soonest first
    assert by_review.index(">Warm <span") < by_review.index(">Hot <span")


def test_rules_past_their_review_date_are_listed_on_the_admin_index(admin_client, admin_user):
    services.rule_save(spec=make_spec("warm", name="Warm", review_by="2020-01-01"), user=admin_user)
    services.rule_save(spec=make_spec("hot", name="Hot"), user=admin_user)
    assert [rule.key for rule in rules_past_review()] == ["warm"]
    later = timezone.localdate() + dt.timedelta(days=400)
    assert [rule.key for rule in rules_past_review(today=later)] == ["warm", "hot"]
    index = admin_client.get(reverse("admin:index")).content.decode()
    assert 'id="rules-past-review"' in index and "Warm" in index and "due on 1 Jan 2020" in index
    assert rule_spec(Rule.objects.get(key="warm"))["review_by"] == "2020-01-01"
