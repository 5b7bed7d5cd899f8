"""The task queue: jobs stored in the database, run by workers, progress readable anywhere,
periodic jobs enqueued exactly once per period, and jobs whose worker died marked cut off."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from rules import jobs
from rules.models import Job, PeriodicRun
from rules.registry import registry

pytestmark = pytest.mark.django_db(transaction=True)

COUNTED: list[int] = []


def count_to(job: Job, progress) -> dict[str, int]:
    for n in range(1, job.params["to"] + 1):
        COUNTED.append(n)
        progress(n, job.params["to"])
    return {"counted": job.params["to"]}


def break_down(job: Job, progress) -> None:
    raise RuntimeError("the engine fell over")


def sum_counts(results: list[dict[str, int]]) -> dict[str, int]:
    return {"counted": sum(result["counted"] for result in results)}


def count_or_break(job: Job, progress) -> dict[str, int]:
    if job.params.get("broken"):
        raise RuntimeError("this part fell over")
    return count_to(job, progress)


@pytest.fixture
def kinds():
    COUNTED.clear()
    registry.register_job("count", count_to, combine=sum_counts)
    registry.register_job("break", break_down)
    registry.register_job("count-or-break", count_or_break, combine=sum_counts)
    yield
    for kind in ("count", "break", "count-or-break"):
        registry._job_handlers.pop(kind)
        registry._job_combiners.pop(kind, None)


def run_worker() -> None:
    call_command("worker", "--batch", verbosity=0)


def test_a_job_waits_in_the_database_until_a_worker_runs_it(kinds):
    job = jobs.job_start("count", title="Count to three", params={"to": 3})
    assert job.status == Job.Status.QUEUED and COUNTED == []

    run_worker()

    job.refresh_from_db()
    assert (job.status, job.done, job.total, job.result) == (Job.Status.DONE, 3, 3, {"counted": 3})
    assert COUNTED == [1, 2, 3] and job.attempts == 1 and job.finished_at is not None


def test_a_job_runs_once_even_when_its_queue_entry_is_taken_twice(kinds):
    job = jobs.job_start("count", title="Count to two", params={"to": 2})
    assert jobs.job_run.call(str(job.pk)) == Job.Status.DONE
    assert jobs.job_run.call(str(job.pk)) == "skipped"
    assert COUNTED == [1, 2]


def test_a_failing_job_says_so_in_words_and_keeps_the_details_for_the_log(kinds, caplog):
    job = jobs.job_start("break", title="Break")
    run_worker()
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error == jobs.MSG_FAILED.format(id=job.pk)
    assert "RuntimeError" not in job.error
    assert "the engine fell over" in caplog.text


def test_a_job_whose_worker_stopped_is_marked_cut_off_and_can_be_started_again(kinds, settings):
    settings.JOBS_STALE_SECONDS = 60
    job = jobs.job_start("count", title="Count", params={"to": 2})
    # As a worker killed mid-run leaves it: running, with a heartbeat that stopped.
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.RUNNING, heartbeat_at=timezone.now() - dt.timedelta(seconds=61)
    )
    fresh = jobs.job_start("count", title="Count", params={"to": 1})
    Job.objects.filter(pk=fresh.pk).update(status=Job.Status.RUNNING, heartbeat_at=timezone.now())

    assert jobs.jobs_sweep()["cut_off"] == 1

    job.refresh_from_db()
    fresh.refresh_from_db()
    assert (job.status, job.error, job.finished) == (Job.Status.CUT_OFF, jobs.MSG_CUT_OFF, True)
    assert fresh.status == Job.Status.RUNNING  # its worker is alive
    again = jobs.job_start("count", title="Count", params={"to": 2})
    run_worker()
    again.refresh_from_db()
    assert again.status == Job.Status.DONE


def test_each_periodic_job_is_enqueued_once_per_period_however_many_workers_look(kinds):
    ran: list[str] = []
    registry.register_periodic("tally", 60, lambda: ran.append("tally") or {"tallied": 1})
    try:
        at = 1_000_000 * 60 + 5
        # Three workers' clocks in the same minute: the first one enqueues it, the others do not.
        looks = [jobs.periodic_due(at), jobs.periodic_due(at + 10), jobs.periodic_due(at + 50)]
        assert ["tally" in enqueued for enqueued in looks] == [True, False, False]
        assert PeriodicRun.objects.filter(name="tally").count() == 1
        # The next minute: once more.
        assert "tally" in jobs.periodic_due(at + 60)
        assert PeriodicRun.objects.filter(name="tally").count() == 2
        call_command("worker", "--batch", verbosity=0)
        assert ran.count("tally") >= 2
    finally:
        registry._periodic.pop("tally")


def test_the_worker_enqueues_what_is_due_and_runs_it(kinds):
    ran: list[str] = []
    registry.register_periodic("ping", 3600, lambda: ran.append("ping"))
    try:
        run_worker()
        run_worker()  # the same hour: not again
        assert ran == ["ping"]
    finally:
        registry._periodic.pop("ping")


def test_jobs_are_listed_in_the_admin_with_their_progress_in_words(kinds, client):
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_job"))
    client.force_login(viewer)
    waiting = jobs.job_start("count", title="Count to four", params={"to": 4})
    page = client.get(reverse("admin:rules_job_changelist")).content.decode()
    assert "Count to four" in page and "waiting for a worker" in page and "not started" in page
    run_worker()
    page = client.get(reverse("admin:rules_job_change", args=[waiting.pk])).content.decode()
    assert "finished" in page and "4 of 4" in page and "counted: 4" in page
    assert "{" not in page.split('id="content"')[1].split("</form>")[0]
    # Read-only: nothing to add, change or delete.
    assert client.post(reverse("admin:rules_job_delete", args=[waiting.pk]), {"post": "yes"}).status_code == 403


# -- jobs in parts ------------------------------------------------------------------------------
def test_a_job_in_parts_runs_each_part_as_a_job_and_combines_their_results(kinds):
    whole = jobs.job_start_parts("count", title="Count in parts", parts=[{"to": 2}, {"to": 3}, {"to": 4}])
    parts = list(whole.parts.order_by("part"))
    assert [p.params["to"] for p in parts] == [2, 3, 4] and whole.status == Job.Status.QUEUED
    assert [p.title for p in parts] == [f"Count in parts (part {n} of 3)" for n in (1, 2, 3)]

    assert jobs.job_run.call(str(parts[0].pk)) == Job.Status.DONE
    whole.refresh_from_db()
    assert (whole.status, whole.done, whole.total, whole.result) == (Job.Status.RUNNING, 2, 2, None)

    run_worker()
    whole.refresh_from_db()
    assert (whole.status, whole.done, whole.total) == (Job.Status.DONE, 9, 9)
    assert whole.result == {"counted": 9} and sorted(COUNTED) == sorted([1, 2, 1, 2, 3, 1, 2, 3, 4])


def test_one_part_is_a_plain_job(kinds):
    job = jobs.job_start_parts("count", title="Count", params={"to": 1}, parts=[{"to": 2}])
    assert job.params == {"to": 2} and not job.parts.exists()


def test_a_whole_job_fails_when_one_of_its_parts_fails(kinds):
    whole = jobs.job_start_parts("count-or-break", title="Some break", parts=[{"to": 2}, {"broken": True}])
    run_worker()
    whole.refresh_from_db()
    assert whole.status == Job.Status.FAILED and whole.result is None
    assert whole.error.startswith("It stopped with an error.")


def test_a_whole_job_is_cut_off_with_its_first_part_cut_off_and_not_before(kinds, settings):
    settings.JOBS_STALE_SECONDS = 60
    whole = jobs.job_start_parts("count", title="Count", parts=[{"to": 2}, {"to": 2}])
    first, second = whole.parts.order_by("part")
    long_ago = timezone.now() - dt.timedelta(minutes=5)
    Job.objects.filter(pk=whole.pk).update(status=Job.Status.RUNNING, heartbeat_at=long_ago)
    jobs.jobs_sweep()  # its parts wait for a worker: the whole is not cut off for its old heartbeat
    assert Job.objects.get(pk=whole.pk).status == Job.Status.RUNNING
    Job.objects.filter(pk=first.pk).update(status=Job.Status.RUNNING, heartbeat_at=long_ago)
    jobs.jobs_sweep()
    assert Job.objects.get(pk=first.pk).status == Job.Status.CUT_OFF
    assert Job.objects.get(pk=whole.pk).status == Job.Status.CUT_OFF
    run_worker()  # the other part still runs, and changes nothing of the whole
    assert Job.objects.get(pk=second.pk).status == Job.Status.DONE
    assert Job.objects.get(pk=whole.pk).status == Job.Status.CUT_OFF


def test_only_a_kind_that_combines_can_be_done_in_parts(kinds):
    with pytest.raises(LookupError):
        jobs.job_start_parts("break", title="Break", parts=[{}, {}])


def test_the_admin_lists_a_job_in_parts_once_and_says_how_each_part_goes(kinds, client):
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_job"))
    client.force_login(viewer)
    whole = jobs.job_start_parts("count", title="Count in parts", parts=[{"to": 2}, {"to": 3}])
    listing = client.get(reverse("admin:rules_job_changelist"))
    assert [job.pk for job in listing.context["cl"].result_list] == [whole.pk]
    run_worker()
    page = client.get(reverse("admin:rules_job_change", args=[whole.pk])).content.decode()
    assert "part 1: finished, 2 of 2; part 2: finished, 3 of 3" in page and "counted: 5" in page


READY: list[list[str]] = []


def worker_ready() -> None:
    """What a worker's ready hook sees: the statuses of the jobs."""
    READY.append(list(Job.objects.values_list("status", flat=True)))


def test_a_worker_calls_the_projects_ready_hook_once_before_it_takes_a_job(kinds, settings):
    settings.RULES_ENGINE = {"WORKER_READY": f"{__name__}.worker_ready"}
    READY.clear()
    job = jobs.job_start("count", title="Count to one", params={"to": 1})
    run_worker()
    assert READY == [[Job.Status.QUEUED]]
    job.refresh_from_db()
    assert job.status == Job.Status.DONE
