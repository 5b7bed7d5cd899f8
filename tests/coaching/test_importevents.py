"""``manage.py importevents FILE --gym NAME``, and the admin's "Import events": a history of
events from CSV or JSON Lines goes through the same validation and judging as the API, is
idempotent by external_id, and reports each bad line with its number and reason."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from coaching import imports, validation
from coaching.admin import IMPORT_STARTED_AGAIN
from coaching.management.commands.importevents import NO_GYM
from coaching.models import Advice, Event, EventImport
from coaching.services import CONFLICT_MESSAGE, clinician_ensure
from rules.models import Job

from .conftest import day, pain, run
from .properties import advice_state, gym_client, judging_order, member_history

NOW = dt.datetime.now(dt.UTC)


def histories(seed: int, members: int = 3) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    start = NOW - dt.timedelta(days=100)
    return [
        payload
        for n in range(members)
        for payload in member_history(rng, f"m-{n}", start=start, events=rng.randint(18, 26))
    ]


def jsonl(payloads: list[Any]) -> str:
    return "".join((p if isinstance(p, str) else json.dumps(p)) + "\n" for p in payloads)


def as_csv(payloads: list[dict[str, Any]], rng: random.Random) -> str:
    """One column per data field; booleans in every spelling the import takes."""
    fields = sorted({name for p in payloads for name in p["data"]})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*imports.TOP_LEVEL_COLUMNS, *fields])
    for p in payloads:
        cells = [p[name] for name in imports.TOP_LEVEL_COLUMNS]
        for name in fields:
            value = p["data"].get(name, "")
            if isinstance(value, bool):
                value = rng.choice([("true", "false"), ("yes", "no"), ("1", "0"), ("TRUE", "No")])[not value]
            cells.append(value)
        writer.writerow(cells)
    return out.getvalue()


def import_file(path: Path, gym: str = "Riverside Runners", *args: str) -> str:
    out = io.StringIO()
    call_command("importevents", str(path), "--gym", gym, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def reported(output: str) -> list[tuple[int, str]]:
    return [(int(n), reason) for n, reason in re.findall(r"^line (\d+): (.*)$", output, flags=re.M)]


# -- the command ---------------------------------------------------------------------------------
@pytest.mark.django_db
def test_csv_and_jsonl_imports_give_the_advice_of_posting_each_event_in_time_order(pack, tmp_path, monkeypatch):
    payloads = histories(seed=7)
    members = sorted({p["member"] for p in payloads})
    posted = gym_client("Posted one by one")
    for payload in judging_order(payloads):
        posted.send(payload, expect=201)

    # The file's order is not time order, and small chunks split each member's events, so late
    # events re-judge the later ones, as on the API.
    monkeypatch.setattr(imports, "CHUNK_SIZE", 7)
    shuffled = random.Random(1).sample(payloads, len(payloads))
    by_jsonl, by_csv = gym_client("From JSON Lines"), gym_client("From CSV")
    (tmp_path / "history.jsonl").write_text(jsonl(shuffled))
    (tmp_path / "history.csv").write_text(as_csv(shuffled, random.Random(2)))

    assert f"{len(payloads)} new events, 0 already there, 0 bad lines" in import_file(
        tmp_path / "history.jsonl", "From JSON Lines"
    )
    assert f"{len(payloads)} new events" in import_file(tmp_path / "history.csv", "From CSV")

    expected = advice_state(posted, members)
    assert any(state["advice"] for state in expected.values())
    assert advice_state(by_jsonl, members) == expected
    assert advice_state(by_csv, members) == expected
    assert not list(tmp_path.glob("*.errors.txt"))


@pytest.mark.django_db
def test_a_second_import_of_the_same_file_creates_nothing(pack, client, tmp_path):
    path = tmp_path / "history.ndjson"
    path.write_text(jsonl(histories(seed=3, members=2)))
    import_file(path)
    events, advice = Event.objects.count(), list(Advice.objects.values_list("pk", "withdrawn_at"))

    output = import_file(path)

    assert f"0 new events, {events} already there, 0 bad lines skipped" in output
    assert Event.objects.count() == events
    assert list(Advice.objects.values_list("pk", "withdrawn_at")) == advice


@pytest.mark.django_db
def test_bad_jsonl_lines_are_reported_with_line_and_reason_and_the_good_ones_stored(client, tmp_path):
    first = run(at=day(0), external_id="r-1")
    lines = [
        first,  # 1
        '{"external_id": "r-2", "member": "m-1",',  # 2: cut off
        {**run(at=day(1), external_id="r-3"), "type": "swim"},  # 3
        run(at=day(2), external_id="r-4", pain_during=11),  # 4
        pain(at=day(3), external_id="p-5") | {"data": {"location": "hip"}},  # 5: no pain
        run(at=day(4), external_id="r-1", distance_km=9),  # 6: r-1 again, another distance
        "",  # 7
        run(at=day(5), external_id="r-8"),  # 8
        first,  # 9: an identical repeat
    ]
    path = tmp_path / "history.jsonl"
    path.write_text(jsonl(lines))

    output = import_file(path)

    expected = [
        (2, imports.NOT_JSON.format(error="Expecting property name enclosed in double quotes")),
        (
            3,
            "Event type (type): " + validation.TYPE_INVALID.format(choices="run, pain_report, profile, cross_training"),
        ),
        (4, "Pain during the run (pain_during): " + validation.ABOVE_MAXIMUM.format(maximum=10)),
        (5, "Pain (pain): " + validation.REQUIRED),
        (6, "Event id (external_id): " + CONFLICT_MESSAGE),
        (7, imports.EMPTY_LINE),
    ]
    assert reported(output) == expected
    assert "2 new events, 1 already there, 6 bad lines skipped" in output
    assert sorted(Event.objects.values_list("external_id", flat=True)) == ["r-1", "r-8"]
    assert Event.objects.get(external_id="r-1").data["distance_km"] == 3  # the first content stays

    errors_file = tmp_path / "history.jsonl.errors.txt"
    assert f"Bad lines listed in {errors_file}" in output
    assert reported(errors_file.read_text()) == expected

    # Once the file is put right, a new run imports the rest and drops the stale list.
    path.write_text(jsonl([first, run(at=day(1), external_id="r-3")]))
    assert "1 new event, 1 already there, 0 bad lines" in import_file(path)
    assert not errors_file.exists()


@pytest.mark.django_db
def test_csv_cells_are_converted_by_the_field_kind_and_bad_rows_reported(client, tmp_path):
    header = "external_id,member,type,occurred_at,distance_km,duration_min,pain_during,running_shoes,data\n"
    at = day(0).isoformat()
    path = tmp_path / "history.csv"
    path.write_text(
        "\ufeff"  # the byte-order mark spreadsheets write
        + header
        + f"r-1,m-1,run,{at},6.2,38,2,yes,\n"  # 2
        + f'r-2,m-1,run,{at},5,30,,,"{{""surface"":\n""hills""}}"\n'  # 3-4: a cell over two lines
        + f"r-3,m-1,run,{at},5,thirty,,maybe,\n"  # 5
        + f"r-4,m-1,run,{at},,30,4.5,,\n"  # 6
        + f'r-5,m-1,run,{at},5,30,,,"{{""distance_km"": 2}}"\n'  # 7
        + ",,,,,,,,\n"  # 8
        + f"r-6,m-1,cross_training,{at},,45,,,\"{{'activity': 'yoga'}}\"\n"  # 9
        + f'r-7,m-1,cross_training,{at},,45,,,"{{""activity"": ""yoga""}}"\n'  # 10
    )

    output = import_file(path)

    assert reported(output) == [
        (
            5,
            "Duration (duration_min): "
            + validation.NUMBER_INVALID
            + " Wore running shoes (running_shoes): "
            + validation.BOOLEAN_INVALID,
        ),
        (
            6,
            "Pain during the run (pain_during): "
            + validation.INTEGER_INVALID
            + " Distance (distance_km): "
            + validation.REQUIRED,
        ),
        (7, "distance_km: " + imports.GIVEN_TWICE),
        (8, imports.EMPTY_LINE),
        (9, imports.DATA_NOT_JSON.format(error="Expecting property name enclosed in double quotes")),
    ]
    stored = {e.external_id: e.data for e in Event.objects.all()}
    assert stored == {
        "r-1": {"distance_km": 6.2, "duration_min": 38, "pain_during": 2, "running_shoes": True},
        "r-2": {"distance_km": 5, "duration_min": 30, "surface": "hills"},
        "r-7": {"activity": "yoga", "duration_min": 45},
    }


@pytest.mark.django_db
def test_a_file_that_cannot_be_read_or_an_unknown_gym_stops_with_a_clear_error(client, tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text(jsonl([run(at=day(0))]))

    with pytest.raises(CommandError, match=re.escape(NO_GYM.format(name="Nowhere Gym"))):
        import_file(path, "Nowhere Gym")
    with pytest.raises(CommandError, match=r"Cannot read .*missing\.jsonl: No such file or directory"):
        import_file(tmp_path / "missing.jsonl")
    with pytest.raises(CommandError, match="Cannot tell the format"):
        import_file(path.rename(tmp_path / "history.txt"))

    (tmp_path / "no-type.csv").write_text("external_id,member,occurred_at,distance_km\nr-1,m-1,2026-01-01T07:00Z,5\n")
    with pytest.raises(CommandError, match=re.escape(imports.HEADER_COLUMNS_MISSING.split("{")[0] + "type")):
        import_file(tmp_path / "no-type.csv")
    (tmp_path / "array.json").write_text(json.dumps([run(at=day(0))]))
    with pytest.raises(CommandError, match=re.escape(imports.JSON_ARRAY)):
        import_file(tmp_path / "array.json")
    assert Event.objects.count() == 0

    # --format reads a file whatever its name.
    assert "1 new event," in import_file(tmp_path / "history.txt", "Riverside Runners", "--format", "jsonl")


# -- the admin -----------------------------------------------------------------------------------
def worker() -> None:
    call_command("worker", "--batch", verbosity=0)


def operator_browser() -> Client:
    """A staff user who may import events and see gyms (not a clinician)."""
    user = get_user_model().objects.create_user("ops-olga", password="a-long-password", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="coaching", codename__in=["import_events", "view_gym"])
    )
    browser = Client()
    browser.force_login(user)
    return browser


def visible_text(html: str) -> str:
    main = html[html.index('<div id="content-main">') :]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", main))


@pytest.mark.django_db(transaction=True)
def test_an_operator_uploads_a_file_in_the_admin_a_worker_imports_it_and_the_report_is_in_words(pack):
    gym = gym_client("Riverside Runners").gym
    browser = operator_browser()
    gym_page = browser.get(reverse("admin:coaching_gym_change", args=[gym.pk])).content.decode()
    upload_url = f"{reverse('admin:coaching_eventimport_add')}?gym={gym.pk}"
    assert f'href="{upload_url}"' in gym_page
    assert browser.get(upload_url).status_code == 200

    content = jsonl([run(at=day(0), external_id="r-1"), "{oops", run(at=day(1), external_id="r-3", pain_during=11)])
    response = browser.post(
        upload_url,
        {"gym": gym.pk, "file": SimpleUploadedFile("history.jsonl", content.encode()), "format": ""},
        follow=True,
    )

    upload = EventImport.objects.get()
    assert response.redirect_chain[-1][0] == reverse("admin:coaching_eventimport_change", args=[upload.pk])
    assert "Waiting for a worker" in visible_text(response.content.decode())
    assert '<meta http-equiv="refresh"' in response.content.decode()  # it follows the job by itself
    assert Job.objects.get(kind=imports.IMPORT_JOB).status == Job.Status.QUEUED

    worker()

    page = browser.get(reverse("admin:coaching_eventimport_change", args=[upload.pk])).content.decode()
    text = visible_text(page)
    assert "Finished" in text and "refresh" not in page
    assert "3 lines of events read: 1 new event stored, 0 already there" in text
    assert "2 bad lines skipped" in text
    assert "2 " + imports.NOT_JSON.format(error="Expecting property name enclosed in double quotes") in text
    assert "3 Pain during the run (pain_during): Must be at most 10." in text
    assert "{" not in text and "data." not in text  # no JSON, no field paths
    assert list(Event.objects.values_list("external_id", flat=True)) == ["r-1"]
    upload.refresh_from_db()
    assert bytes(upload.content) == b""  # the file is dropped once imported; the report stays

    bad_lines = browser.get(reverse("admin:coaching_eventimport_bad_lines", args=[upload.pk]))
    assert reported(bad_lines.content.decode()) == [(line, reason) for line, reason in upload.bad_lines]
    listed = visible_text(browser.get(reverse("admin:coaching_eventimport_changelist")).content.decode())
    assert "history.jsonl Riverside Runners Finished 1 new event, 0 already there, 2 bad lines skipped" in listed
    job_page = browser.get(reverse("admin:rules_job_change", args=[upload.job_id]))
    assert job_page.status_code == 403  # the job list is the clinicians' and superusers'; the report is here


@pytest.mark.django_db
def test_an_unusable_upload_is_refused_at_once_and_clinicians_may_not_import(client, monkeypatch):
    browser = operator_browser()
    upload_url = reverse("admin:coaching_eventimport_add")
    header_only = SimpleUploadedFile("history.csv", b"external_id,member,occurred_at\n")
    response = browser.post(upload_url, {"gym": client.gym.pk, "file": header_only})
    assert imports.HEADER_COLUMNS_MISSING.format(
        missing="type", columns="external_id, member, type, occurred_at"
    ) in visible_text(response.content.decode())

    monkeypatch.setattr(imports, "MAX_UPLOAD_BYTES", 10)
    response = browser.post(upload_url, {"gym": client.gym.pk, "file": SimpleUploadedFile("h.jsonl", b"x" * 20)})
    assert "files up to 0 MB can be imported here" in response.content.decode()
    assert not EventImport.objects.exists()

    clinician, _ = clinician_ensure(username="pt-anna", password="a-long-password")
    as_clinician = Client()
    as_clinician.force_login(clinician)
    assert as_clinician.get(upload_url).status_code == 403
    assert as_clinician.get(reverse("admin:coaching_eventimport_changelist")).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_an_import_whose_worker_stopped_can_be_started_again_and_stores_nothing_twice(pack):
    gym = gym_client("Riverside Runners").gym
    upload = imports.event_import_start(
        gym=gym, name="history.jsonl", content=jsonl([run(at=day(0)), run(at=day(1))]).encode(), format="jsonl"
    )
    Job.objects.filter(pk=upload.job_id).update(status=Job.Status.CUT_OFF)  # as the sweep marks a killed worker
    browser = operator_browser()
    page_url = reverse("admin:coaching_eventimport_change", args=[upload.pk])
    assert "Stopped before the end" in visible_text(browser.get(page_url).content.decode())

    response = browser.post(reverse("admin:coaching_eventimport_start_again", args=[upload.pk]), follow=True)
    assert IMPORT_STARTED_AGAIN in response.content.decode()
    worker()

    assert "2 new events stored" in visible_text(browser.get(page_url).content.decode())
    assert Event.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_the_report_of_a_csv_file_does_not_count_its_header_as_a_line_of_events(pack):
    gym = gym_client("Riverside Runners").gym
    browser = operator_browser()
    at = day(0).isoformat()
    content = (
        f"external_id,member,type,occurred_at,distance_km,duration_min\nr-1,m-1,run,{at},5,30\nr-2,m-1,run,{at},6,35\n"
    )
    browser.post(
        reverse("admin:coaching_eventimport_add"),
        {"gym": gym.pk, "file": SimpleUploadedFile("history.csv", content.encode()), "format": ""},
    )
    worker()
    upload = EventImport.objects.get()
    text = visible_text(browser.get(reverse("admin:coaching_eventimport_change", args=[upload.pk])).content.decode())
    assert "2 lines of events read (the header line apart): 2 new events stored" in text
