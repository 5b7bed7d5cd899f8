"""Two clinicians before advice changes, against the test domain: a request to publish or roll back
freezes what its approver sees, another clinician approves it, and nothing else goes live."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from rules import governance, services, simulation
from rules.evaluation import Fact
from rules.models import PublishRequest, Rule, RulesetVersion
from rules.registry import registry
from rules.selectors import rule_spec
from tests.rules.conftest import cond, make_spec
from tests.rules.test_admin import MemorySource, threshold_spec

pytestmark = pytest.mark.django_db

PUBLISH = reverse("admin:rules_rule_publish")
ROLLBACK = reverse("admin:rules_rule_rollback")
SIMULATE = reverse("admin:rules_rule_simulate")


@pytest.fixture
def source():
    """Readings of three thermostats over the last days: 31, 33, 36 and 40 °C fire "hot" at 30."""
    previous = registry.fact_source()
    now = timezone.now()
    facts = [
        Fact(id=str(i), type="reading", occurred_at=now - dt.timedelta(days=d), data={"temperature": t}, group=g)
        for i, (d, t, g) in enumerate([(5, 31, "a"), (4, 33, "b"), (3, 36, "a"), (2, 40, "c"), (1, 20, "b")])
    ]
    fake = MemorySource(facts)
    registry.register_fact_source(fake)
    yield fake
    registry.register_fact_source(previous)


def clinician(name: str) -> tuple[User, Client]:
    user = User.objects.create_superuser(name, f"{name}@example.com", "pw")
    browser = Client()
    browser.force_login(user)
    return user, browser


@pytest.fixture
def anna():
    return clinician("anna")


@pytest.fixture
def ben():
    return clinician("ben")


@pytest.fixture
def live_hot(anna):
    services.rule_save(spec=threshold_spec(30), user=anna[0])
    return services.ruleset_publish(user=anna[0], comment="first")


def tune(limit: float, user: User) -> None:
    services.rule_save(spec=threshold_spec(limit), rule=Rule.objects.get(key="hot"), user=user)


def ask(browser: Client, **data: str) -> PublishRequest:
    response = browser.post(PUBLISH, {"comment": "Fewer false alarms", **data})
    assert response.status_code == 302, response.content.decode()[:2000]
    return PublishRequest.objects.latest("requested_at")


def test_a_request_is_approved_by_another_clinician_and_publishes_what_it_froze(anna, ben, live_hot, source):
    tune(35, anna[0])
    request = ask(anna[1])
    assert (request.status, RulesetVersion.objects.count()) == ("pending", 1)
    page = anna[1].get(reverse("admin:rules_publishrequest_change", args=[request.pk])).content.decode()
    assert governance.MSG_OWN_REQUEST in page and 'name="_approve"' not in page
    refused = anna[1].post(reverse("admin:rules_publishrequest_change", args=[request.pk]), {"_approve": "1"})
    assert governance.MSG_OWN_REQUEST in refused.content.decode() and RulesetVersion.objects.count() == 1

    page = ben[1].get(reverse("admin:rules_publishrequest_change", args=[request.pk])).content.decode()
    assert "Parameter “Limit”" in page and "30 °C" in page and "35 °C" in page  # the frozen diff
    assert "2 would disappear" in page and 'id="rules-burden"' in page  # the simulation and burden
    approved = ben[1].post(
        reverse("admin:rules_publishrequest_change", args=[request.pk]), {"_approve": "1", "comment": "Looks right"}
    )
    assert approved.status_code == 302
    live = RulesetVersion.objects.get(number=2)
    assert (live.comment, live.created_by, live.origin) == ("Fewer false alarms", anna[0], "approved")
    assert live.snapshot[0]["parameters"][0]["value"] == 35
    request.refresh_from_db()
    assert (request.status, request.version, request.approvals.get().approved_by) == ("published", live, ben[0])
    version_page = ben[1].get(reverse("admin:rules_rulesetversion_change", args=[live.pk])).content.decode()
    assert 'id="rules-request-record"' in version_page and "Looks right" in version_page
    assert "2 would disappear" in version_page and "Fewer false alarms" in version_page


def test_editing_the_draft_after_the_request_makes_it_void(anna, ben, live_hot, source):
    tune(35, anna[0])
    request = ask(anna[1])
    tune(36, anna[0])
    request.refresh_from_db()
    assert request.status == "void" and request.void_reason == services.MSG_VOID_DRAFT_CHANGED
    response = ben[1].post(reverse("admin:rules_publishrequest_change", args=[request.pk]), {"_approve": "1"})
    assert "no longer waits for approval" in response.content.decode()
    assert RulesetVersion.objects.count() == 1


def test_another_version_going_live_makes_a_waiting_request_void(anna, live_hot, source):
    tune(35, anna[0])
    request = ask(anna[1])
    services.ruleset_publish(user=anna[0], comment="by a program")
    request.refresh_from_db()
    assert request.status == "void" and "Version 2 went live" in request.void_reason


def test_two_approvals_when_the_practice_asks_for_two(anna, ben, live_hot, source, settings):
    settings.RULES_ENGINE = {**settings.RULES_ENGINE, "PUBLISH_APPROVALS": 2}
    tune(35, anna[0])
    request = ask(anna[1])
    url = reverse("admin:rules_publishrequest_change", args=[request.pk])
    ben[1].post(url, {"_approve": "1"})
    assert RulesetVersion.objects.count() == 1
    again = ben[1].post(url, {"_approve": "1"})
    assert governance.MSG_APPROVED_ALREADY in again.content.decode()
    _, carl = clinician("carl")
    assert carl.post(url, {"_approve": "1"}).status_code == 302
    assert RulesetVersion.objects.count() == 2


def test_with_sign_off_switched_off_the_admin_says_so_and_publishes_at_once(anna, live_hot, source, no_sign_off):
    tune(35, anna[0])
    page = anna[1].get(PUBLISH).content.decode()
    assert governance.MSG_APPROVALS_OFF in page
    request = ask(anna[1])
    assert request.status == "published" and RulesetVersion.objects.get(number=2).origin == "approved"
    page = anna[1].get(reverse("admin:rules_rulesetversion_change", args=[request.version.pk])).content.decode()
    assert "sign-off was switched off" in page


def test_a_roll_back_is_a_request_too(anna, ben, live_hot, source):
    tune(35, anna[0])
    services.ruleset_publish(user=anna[0], comment="second")
    response = anna[1].post(ROLLBACK, {"version": 1, "comment": "Too quiet", "_confirm": "1"})
    assert response.status_code == 302 and RulesetVersion.objects.count() == 2
    request = PublishRequest.objects.get(kind="rollback")
    assert (request.rollback_to, request.live_version, request.simulation["totals"]["appear"]) == (1, 2, 2)
    assert ben[1].post(reverse("admin:rules_publishrequest_change", args=[request.pk]), {"_approve": "1"}).status_code
    live = RulesetVersion.objects.get(number=3)
    assert (live.rolled_back_from, live.comment) == (1, "Too quiet")
    assert rule_spec(Rule.objects.get(key="hot"))["parameters"][0]["value"] == "30"  # the draft follows


def test_the_author_may_withdraw_a_request_and_nobody_else(anna, ben, live_hot, source):
    tune(35, anna[0])
    request = ask(anna[1])
    with pytest.raises(governance.RequestRefused):
        governance.publish_request_withdraw(request=request, user=ben[0])
    governance.publish_request_withdraw(request=request, user=anna[0])
    request.refresh_from_db()
    assert request.status == "withdrawn"


def test_a_request_needs_a_simulation_of_the_very_draft(anna, live_hot, source):
    tune(35, anna[0])
    job = simulation.simulation_of_draft(user=anna[0])
    tune(36, anna[0])
    with pytest.raises(governance.RequestRefused, match="simulate the draft as it is now"):
        governance.publish_request_create(user=anna[0], comment="x", simulation_job=job)


def test_a_draft_flagged_for_its_burden_needs_a_written_reason(anna, live_hot, source):
    tune(10, anna[0])  # every reading of 20 °C and more: more advice than the live version gives
    services.rule_save(
        spec=make_spec("warm", conditions=[cond("temperature", "gt", 15)], severity="critical", message="Warm"),
        user=anna[0],
    )
    page = anna[1].get(PUBLISH).content.decode()
    assert "Advice per thermostat and week rises by" in page and "“red” card" in page
    refused = anna[1].post(PUBLISH, {"comment": "More alarms"})
    assert (
        refused.status_code == 200 and "Say why this flagged draft should go live anyway." in refused.content.decode()
    )
    request = ask(anna[1], reason="The boilers are old: better safe.")
    assert request.reason == "The boilers are old: better safe." and request.burden["flags"]


def test_the_simulation_shows_each_change_with_both_versions_advice(anna, live_hot, source):
    tune(35, anna[0])
    services.rule_save(spec=make_spec("mild", conditions=[cond("temperature", "lt", 25)], message="Mild"), user=anna[0])
    response = anna[1].post(SIMULATE, {"days": 30})
    page = anna[1].get(response["Location"]).content.decode()
    job = response["Location"].split("job=")[1]
    # Every figure links to its rows: the totals and each rule's counts.
    for kind in ("live", "draft", "appear", "disappear", "change"):
        assert f"?job={job}&amp;kind={kind}" in page
    assert f"?job={job}&amp;rule=hot&amp;kind=disappear" in page
    # The changed rules come first.
    assert page.index('data-rule="hot"') < page.index('data-rule="mild"') or "mild" not in page
    rows = anna[1].get(SIMULATE, {"job": job, "rule": "hot", "kind": "disappear"}).content.decode()
    listed = rows.split('id="simulation-rows"')[1]
    assert "Where “Hot” would disappear: 2" in listed
    assert listed.count('data-kind="disappear"') == 2 and 'data-kind="change"' not in listed
    assert "Temperature 31 over 30" in listed and "no advice from this rule" in listed
    changed = anna[1].get(SIMULATE, {"job": job, "rule": "hot", "kind": "change"}).content.decode()
    assert "Temperature 36 over 30" in changed and "Temperature 36 over 35" in changed  # side by side
