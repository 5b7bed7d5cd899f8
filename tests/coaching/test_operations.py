"""Operations: the operator's account (createoperator), and after a publish the admin's offer to
judge the affected members' stored events again with the new version, as a job."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from coaching.jobs import REEVALUATE_JOB
from coaching.models import Advice
from coaching.services import clinician_ensure
from rules.admin.views import MSG_REEVALUATION_STARTED
from rules.models import Job
from rules.selectors import rule_spec, rules_with_children
from rules.services import rule_save

from .conftest import approved_by_another_clinician, pain, profile, run

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-operator-password"


def test_createoperator_makes_a_superuser_and_is_safe_to_run_again():
    out = io.StringIO()
    call_command("createoperator", "ops", "--password", PASSWORD, "--email", "ops@example.org", stdout=out)
    call_command("createoperator", "ops", stdout=out)  # again: the password stays
    assert out.getvalue().splitlines() == [
        "Created operator ops (superuser of the admin).",
        "Updated operator ops (superuser of the admin).",
    ]
    user = get_user_model().objects.get(username="ops")
    assert user.is_staff and user.is_superuser and user.email == "ops@example.org"
    assert user.check_password(PASSWORD)
    browser = Client()
    browser.force_login(user)
    assert browser.get(reverse("admin:coaching_gym_add")).status_code == 200  # gyms are the operator's


def test_createoperator_refuses_a_weak_password_and_changes_nothing():
    with pytest.raises(CommandError, match="The password was refused"):
        call_command("createoperator", "ops", "--password", "123", stdout=io.StringIO())
    assert not get_user_model().objects.filter(username="ops").exists()


def current(member: str) -> list[str]:
    advice = Advice.objects.filter(member__external_id=member, withdrawn_at__isnull=True)
    return sorted(advice.values_list("rule_key", flat=True))


@pytest.mark.django_db(transaction=True)  # a real worker runs the job, committing as it goes
def test_after_a_publish_the_clinician_may_rerun_the_affected_members_as_a_job(client, pack):
    days_ago = timezone.now() - dt.timedelta(days=3)
    for member in ("m-1", "m-2"):
        client.send(profile(at=days_ago, member=member, cleared_by_physician=True), expect=201)
    client.send(run(at=days_ago + dt.timedelta(days=1), member="m-1", pain_during=6), expect=201)
    client.send(pain(at=days_ago + dt.timedelta(days=1), member="m-2", pain=2), expect=201)  # no run: not affected
    assert "pain-stop" in current("m-1")

    # A clinician raises pain-stop's threshold above the pain that made it fire, and publishes.
    clinician, _ = clinician_ensure(username="pt-anna", password="a-long-clinician-password")
    browser = Client()
    browser.force_login(clinician)
    rule = rules_with_children().get(key="pain-stop")
    spec = rule_spec(rule)
    spec["parameters"] = [{**p, "value": 7} if p["name"] == "threshold" else p for p in spec["parameters"]]
    rule_save(spec=spec, rule=rule)
    asked = browser.post(reverse("admin:rules_rule_publish"), {"comment": "Threshold 7"})
    published, browser = approved_by_another_clinician(asked["Location"])
    offer_url = published["Location"]
    assert offer_url.startswith(reverse("admin:rules_rule_reevaluate"))

    offer = browser.get(offer_url).content.decode()
    assert "<b>1 member</b>" in offer and "Run" in offer  # m-1 ran; m-2 only reported pain
    assert "pain-stop" in current("m-1")  # nothing changes until the clinician chooses

    started = browser.post(offer_url, {"days": 30})
    job = Job.objects.get(kind=REEVALUATE_JOB)
    assert started["Location"] == reverse("admin:rules_job_change", args=[job.pk])
    assert job.status == Job.Status.QUEUED and list(job.params["members"]) == [
        str(Advice.objects.filter(member__external_id="m-1").first().member_id)
    ]
    page = browser.get(started["Location"]).content.decode()
    assert MSG_REEVALUATION_STARTED.format(count=1, subjects="member", number=2) in page

    call_command("worker", "--batch", verbosity=0)
    job.refresh_from_db()
    assert job.status == Job.Status.DONE
    assert "pain-stop" not in current("m-1")


def test_a_publish_that_changes_no_judging_offers_nothing(client, pack):
    clinician, _ = clinician_ensure(username="pt-anna", password="a-long-clinician-password")
    browser = Client()
    browser.force_login(clinician)
    rule = rules_with_children().get(key="pain-stop")
    rule_save(spec={**rule_spec(rule), "name": "Pain stop, renamed"}, rule=rule)  # only the name
    asked = browser.post(reverse("admin:rules_rule_publish"), {"comment": "Renamed"})
    assert asked.status_code == 302, asked.content.decode()[-3000:]
    published, _ = approved_by_another_clinician(asked["Location"])
    assert published.status_code == 302, published.content.decode()[-3000:]
    assert published["Location"] == reverse("admin:rules_rule_changelist")
