"""The member's timeline and the coaching admin as a clinician reads it: every member, event and
piece of advice in words (no JSON, no internal numbers), reached by links that all open."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections import deque
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.staticfiles import finders
from django.templatetags.static import static
from django.test import Client
from django.urls import reverse

from coaching import admin as coaching_admin
from coaching import selectors, words
from coaching.models import Advice, Event, Member
from coaching.services import clinician_ensure
from rules import evaluation
from rules.spec import condition

from .added_rules import FIRST_RUN_CHECK, MASSAGE_REFERRAL, _rule, rules_add
from .conftest import GymClient, cross, day, pain, profile, run

pytestmark = pytest.mark.django_db

MEMBERS = "/admin/coaching/member/"
EVENTS = "/admin/coaching/event/"
ADVICE = "/admin/coaching/advice/"
PLUS_ONE = dt.timezone(dt.timedelta(hours=1))


BLOCK_TAG = re.compile(
    r"</?(?:p|div|li|ul|ol|h\d|section|details|summary|tr|td|th|table|br|fieldset|label)\b[^>]*>", re.I
)


def as_text(markup: str) -> str:
    """Markup as a person reads it: no scripts, styles or tags, entities decoded."""
    markup = re.sub(r"<(script|style)\b.*?</\1>", " ", markup, flags=re.S | re.I)
    markup = re.sub(r"<[^>]+>", "", BLOCK_TAG.sub(" ", markup))
    return re.sub(r"\s+", " ", html.unescape(markup)).strip()


def visible(response: Any) -> str:
    return as_text(response.content.decode())


def assert_no_json(response: Any) -> None:
    text = visible(response)
    for sign in ('{"', "{'", '["', '": ', "[{"):
        assert sign not in text, f"{sign!r} in {response.request['PATH_INFO']}: …{text[text.find(sign) - 80 :][:200]}…"


def member_page(external_id: str = "m-1") -> str:
    return reverse("admin:coaching_member_change", args=[Member.objects.get(external_id=external_id).pk])


@pytest.fixture
def clinician(db) -> Client:
    user, _ = clinician_ensure(username="pt-anna", password="a-long-password")
    browser = Client()
    browser.force_login(user)
    return browser


@pytest.fixture
def history(client: GymClient, pack) -> GymClient:
    """m-1: cleared; a first run (day 1) with first-run advice, withdrawn when an earlier run
    (day 0.5) arrives late; a run on hills that hurt (day 2, sent from UTC+01:00); a massage that
    refers them (day 3); and a pain report while under referral (day 4)."""
    rules_add(MASSAGE_REFERRAL, FIRST_RUN_CHECK)
    client.send(profile(at=day(-1), cleared_by_physician=True, external_id="profile-1"), expect=201)
    client.send(run(at=day(1), external_id="run-1"), expect=201)
    client.send(run(at=day(0.5), external_id="run-0", distance_km=3), expect=201)
    hills = run(
        at=day(2),
        external_id="run-2",
        distance_km=6.2,
        duration_min=38,
        surface="hills",
        pain_before=2,
        pain_during=6,
        pain_after=5,
    )
    hills["occurred_at"] = day(2).astimezone(PLUS_ONE).isoformat()
    client.send(hills, expect=201)
    client.send(cross(at=day(3), activity="massage", duration_min=30, external_id="massage-1"), expect=201)
    client.send(pain(at=day(4), pain=7, location="lower_back", numbness=True, external_id="pain-1"), expect=201)
    return client


def section(page: str, external_id: str) -> str:
    """One event's part of the timeline, as text."""
    match = re.search(rf'<section class="coaching-event"[^>]*data-event="{external_id}".*?</section>', page, re.S)
    assert match, f"no timeline entry for {external_id}"
    return as_text(match.group(0))


# -- the timeline -------------------------------------------------------------------------------
def test_the_timeline_lists_the_members_events_newest_first_in_words(history, clinician):
    response = clinician.get(member_page())
    assert response.status_code == 200
    page = response.content.decode()
    shown = ("pain-1", "massage-1", "run-2", "run-1", "run-0", "profile-1")
    order = [page.index(f'data-event="{e}"') for e in shown]
    assert order == sorted(order)
    assert "Events 1–6 of 6, newest first." in visible(response)

    assert "Run, 6.2 km in 38 min on hills, pain 2 → 6 → 5" in section(page, "run-2")
    assert words.local_moment(day(2), 60) in section(page, "run-2")  # the member's own local time
    assert "Pain report, pain 7/10 in the lower back, numbness" in section(page, "pain-1")
    assert "Profile: cleared by a physician" in section(page, "profile-1")
    assert "Cross-training: massage, 30 min" in section(page, "massage-1")


def test_each_event_shows_the_advice_it_produced_in_words(history, clinician):
    page = clinician.get(member_page()).content.decode()
    massage = section(page, "massage-1")
    assert (
        f"See a physician or physical therapist — {MASSAGE_REFERRAL['name']}: “{MASSAGE_REFERRAL['message']}”"
        in massage
    )
    assert coaching_admin.TIMELINE_STARTED_REFERRAL in massage
    first_run = section(page, "run-0")
    assert f"Adjust the next runs — {FIRST_RUN_CHECK['name']}" in first_run and "Withdrawn" not in first_run
    pain_stop = Advice.objects.get(event__external_id="run-2", severity="stop")
    assert f"Stop running for now — {pain_stop.rule_name}: “{pain_stop.message}”" in section(page, "run-2")
    assert coaching_admin.TIMELINE_NO_ADVICE in section(page, "profile-1")
    advice = Advice.objects.get(rule_key=MASSAGE_REFERRAL["key"])
    assert reverse("admin:coaching_advice_change", args=[advice.pk]) in page


def test_withdrawn_advice_shows_as_withdrawn_with_when_why_and_by_which_event(history, clinician):
    withdrawn = Advice.objects.get(rule_key=FIRST_RUN_CHECK["key"], withdrawn_at__isnull=False)
    assert withdrawn.event.external_id == "run-1"
    page = clinician.get(member_page()).content.decode()
    entry = section(page, "run-1")
    assert f"Withdrawn Adjust the next runs — {FIRST_RUN_CHECK['name']}" in entry
    reason = words.dates_in_words(withdrawn.withdrawn_reason)
    assert f"Withdrawn {words.moment(withdrawn.withdrawn_at)}" in entry and reason in entry
    late = Event.objects.get(external_id="run-0")
    assert f"when the run of {words.local_moment(late.occurred_at, 0)} arrived" in entry
    assert reverse("admin:coaching_event_change", args=[late.pk]) in page


def test_the_timeline_shows_the_referral_the_mark_cleared_button_and_what_it_held_back(history, clinician):
    response = clinician.get(member_page())
    text = visible(response)
    assert "Under referral since" in text and MASSAGE_REFERRAL["name"] in text
    assert reverse("admin:coaching_member_clear_referral", args=[Member.objects.get().pk]) in response.content.decode()
    assert "Mark cleared" in text
    during = section(response.content.decode(), "pain-1")
    assert "Under referral at the time" in during and "“Stop running for now”" in during
    assert "Under referral at the time" not in section(response.content.decode(), "massage-1")

    clinician.post(reverse("admin:coaching_member_clear_referral", args=[Member.objects.get().pk]))
    after = clinician.get(member_page())
    assert "Mark cleared" not in visible(after)
    assert coaching_admin.REFERRAL_NONE in visible(after)
    assert "Profile: cleared by a physician" in visible(after)


YOGA_TIP = _rule(
    "yoga-tip",
    "Yoga is good for your back",
    category="encouragement",
    severity="info",
    message="Yoga keeps your back supple.",
    summary="Keep up the yoga",
    steps=[{"fact_type": "cross_training"}],
    conditions=[condition("activity", "eq", "yoga")],
)


def test_on_request_the_timeline_shows_what_the_rules_held_back_and_why(history, clinician):
    rules_add(YOGA_TIP)
    history.send(cross(at=day(5), activity="yoga", external_id="yoga-1"), expect=201)
    plain = clinician.get(member_page()).content.decode()
    assert "Show what the rules held back" in plain and "Held back" not in section(plain, "yoga-1")

    page = clinician.get(member_page(), {"held": "1"}).content.decode()
    why = evaluation.MSG_HELD_REFERRAL.format(
        subject="member", date=evaluation.date_words(day(3)), rule=MASSAGE_REFERRAL["name"]
    )
    assert f"Held back Tip — “{YOGA_TIP['name']}”. {why}" in section(page, "yoga-1")
    assert coaching_admin.TIMELINE_NO_ADVICE in section(page, "yoga-1")
    assert "Hide what was held back" in page
    assert not Advice.objects.filter(rule_key=YOGA_TIP["key"]).exists()  # nothing stored


def test_each_event_shows_the_figures_the_rules_saw_labelled_with_units(history, clinician):
    page = clinician.get(member_page()).content.decode()
    first = section(page, "run-0")
    assert "Figures the rules saw" in first
    assert "Runs in the last 7 days: 1 run " in first and "Run number: 1 " in first
    assert "Distance this week: 3 km" in first
    assert "Runs in the last 7 days: 3 runs" in section(page, "run-2")
    assert "Profile: cleared by a physician: yes" in first


def test_the_profile_reads_in_words_and_the_clearance_is_told_with_the_referral(history, clinician):
    text = visible(clinician.get(member_page()))
    assert "cleared_by_physician" not in text
    # Never "Cleared by a physician: yes" beside a referral in force: one sentence tells both.
    assert "Cleared by a physician: yes" not in text
    referral = text.split("Referral and clearance:")[1].split("Profile:")[0]
    assert "Under referral since" in referral and "the last clearance by a physician, on" in referral
    assert "came before it" in referral


def test_a_long_timeline_comes_in_pages_newest_first_with_a_link_to_older_events(client, clinician):
    member = Member.objects.create(gym=client.gym, external_id="m-busy")
    Event.objects.bulk_create(
        Event(
            gym=client.gym,
            member=member,
            external_id=f"e-{n:03d}",
            type="cross_training",
            occurred_at=day(n),
            data={"activity": "yoga", "duration_min": n},
            content_hash=str(n),
            evaluated=True,
        )
        for n in range(selectors.TIMELINE_PAGE_SIZE + 10)
    )
    first = clinician.get(member_page("m-busy"))
    page = first.content.decode()
    assert page.count('class="coaching-event"') == selectors.TIMELINE_PAGE_SIZE
    assert 'data-event="e-059"' in page and 'data-event="e-009"' not in page
    assert "Show older events" in page and "Show newer events" not in page
    older = clinician.get(member_page("m-busy"), {"page": 2}).content.decode()
    assert older.count('class="coaching-event"') == 10
    assert 'data-event="e-009"' in older and 'data-event="e-000"' in older
    assert "Show newer events" in older and "Show older events" not in older
    assert "Cross-training: yoga, 1 min" in older


# -- the event and advice pages ------------------------------------------------------------------
def test_the_event_page_shows_labelled_values_and_the_local_time_with_its_offset(history, clinician):
    hills = Event.objects.get(external_id="run-2")
    response = clinician.get(reverse("admin:coaching_event_change", args=[hills.pk]))
    assert response.status_code == 200
    text = visible(response)
    for gone in ("Content hash", "Utc offset minutes", "utc_offset", "distance_km"):
        assert gone not in text
    assert f"Run of {words.local_moment(day(2), 60)}" in text  # the title
    assert "(UTC+01:00)" in text
    assert "Distance: 6.2 km" in text and "Surface: hills" in text and "Pain during the run: 6/10" in text
    assert "Figures the rules saw" in text and "Runs in the last 7 days: 3 runs" in text
    pain_stop = Advice.objects.get(event=hills, severity="stop")
    assert f"Stop running for now — {pain_stop.rule_name}: “{pain_stop.message}”" in text

    assert reverse("admin:coaching_member_change", args=[hills.member_id]) in response.content.decode()
    assert_no_json(response)


def test_the_event_pages_mark_withdrawn_advice_and_name_what_withdrew_it(history, clinician):
    withdrawn = Advice.objects.get(rule_key=FIRST_RUN_CHECK["key"], withdrawn_at__isnull=False)
    first = visible(clinician.get(reverse("admin:coaching_event_change", args=[withdrawn.event_id])))
    assert f"({coaching_admin.TIMELINE_WITHDRAWN.format(at=words.moment(withdrawn.withdrawn_at))})" in first
    late = visible(clinician.get(reverse("admin:coaching_event_change", args=[withdrawn.withdrawn_by_id])))
    assert f"Its arrival withdrew: {withdrawn}" in late


def test_the_advice_page_is_titled_in_words_with_links_to_its_events(history, clinician):
    advice = Advice.objects.get(rule_key=MASSAGE_REFERRAL["key"])
    response = clinician.get(reverse("admin:coaching_advice_change", args=[advice.pk]))
    page = response.content.decode()
    title = f"{MASSAGE_REFERRAL['name']} — member m-1, cross-training of {words.day_words(day(3).date())}"
    assert f"<h1>{html.escape(title)}</h1>" in page
    assert f"for {advice.member_id}" not in visible(response)
    text = visible(response)
    assert "Severity: See a physician or physical therapist" in text
    assert "Summary: " + MASSAGE_REFERRAL["summary"] in text and "Shown as: critical" in text
    massage = Event.objects.get(external_id="massage-1")
    assert f'<a href="{reverse("admin:coaching_event_change", args=[massage.pk])}">' in page
    assert "Put the member under referral: yes" in text
    assert_no_json(response)


def test_the_advice_list_shows_severities_and_categories_in_words(history, clinician):
    text = visible(clinician.get(ADVICE))
    assert "See a physician or physical therapist" in text and "Medical" in text
    assert " refer " not in f" {text} "
    assert "Stop running for now" in text  # the severity filter, in words


# -- no dead ends --------------------------------------------------------------------------------
def crawl(browser: Client, start: list[str]) -> set[str]:
    """Open ``start`` and follow every link into the coaching admin (each filter and sort once):
    each page answers 200 (or redirects), none 403, 404 or 500, and none shows JSON."""
    seen: set[str] = set()
    queue = deque((url, 0) for url in start)
    while queue:
        url, depth = queue.popleft()
        if url in seen:
            continue
        seen.add(url)
        response = browser.get(url)
        assert response.status_code in (200, 302), (url, response.status_code)
        if response.status_code != 200 or not urlsplit(url).path.startswith("/admin/coaching/"):
            continue
        assert_no_json(response)
        if depth >= 2:
            continue
        for href in re.findall(r'href="([^"#]+)', response.content.decode()):
            target = urlsplit(html.unescape(urljoin(url, href)))
            if not target.path.startswith("/admin/coaching/") or target.geturl() in seen:
                continue
            if target.query and depth > 0 and not target.path.endswith("/change/"):
                continue
            queue.append((target.geturl(), depth + 1))
    return seen


def test_every_coaching_page_a_clinician_reaches_opens_and_shows_no_json(history, clinician):
    seen = crawl(clinician, [MEMBERS, EVENTS, ADVICE, "/admin/", "/admin/coaching/"])
    assert len(seen) > 40
    for model in ("member", "event", "advice"):
        assert any(re.search(rf"/admin/coaching/{model}/\d+/change/$", url) for url in seen)
    assert any("held=1" in url for url in seen)
    assert not any("/admin/coaching/gym/" in url for url in seen)


def test_staff_who_may_not_read_advice_find_no_link_to_it(history):
    """Front-desk staff who may read members and events only: the advice is told in words, with
    no link to a page they may not open."""
    user = get_user_model().objects.create_user("front-desk", password="a-long-password", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="coaching", codename__in=["view_member", "view_event"])
    )
    browser = Client()
    browser.force_login(user)
    seen = crawl(browser, [MEMBERS, EVENTS, "/admin/"])
    assert not any("/admin/coaching/advice/" in url for url in seen)
    page = browser.get(member_page()).content.decode()
    assert MASSAGE_REFERRAL["name"] in page and "/admin/coaching/advice/" not in page


def test_the_gym_shows_as_text_for_a_clinician_and_as_a_link_for_who_may_open_it(history, clinician):
    event = Event.objects.get(external_id="run-2")
    advice = Advice.objects.filter(member__external_id="m-1").first()
    pages = [
        member_page(),
        reverse("admin:coaching_event_change", args=[event.pk]),
        reverse("admin:coaching_advice_change", args=[advice.pk]),
    ]
    gym_page = reverse("admin:coaching_gym_change", args=[history.gym.pk])
    for url in pages:
        response = clinician.get(url)
        assert "Riverside Runners" in visible(response)
        assert gym_page not in response.content.decode()
    assert clinician.get(gym_page).status_code == 403  # the link it would have been

    admin = get_user_model().objects.create_superuser("root", password="a-long-password")
    operator = Client()
    operator.force_login(admin)
    assert gym_page in operator.get(member_page()).content.decode()


def test_no_view_site_link_a_favicon_and_plain_error_pages(clinician):
    index = clinician.get("/admin/")
    assert "View site" not in visible(index)
    icon = re.search(r'<link rel="icon" href="([^"]+)"', index.content.decode())
    assert icon and icon.group(1) == static("favicon.svg")
    assert finders.find("favicon.svg")
    favicon = clinician.get("/favicon.ico")
    assert favicon.status_code == 302 and favicon["Location"] == static("favicon.svg")
    assert clinician.get("/")["Location"] == reverse("admin:index")
    missing = clinician.get("/admin/coaching/nothing-here/")
    assert missing.status_code in (302, 404)
    nowhere = clinician.get("/no-such-page/")
    assert nowhere.status_code == 404 and "URLconf" not in nowhere.content.decode()


def test_counts_agree_with_their_number(history, clinician):
    text = visible(clinician.get(MEMBERS))
    assert "6 events" in text
    assert words.count_words(1, "run") == "1 run" and words.count_words(2, "run") == "2 runs"
    assert words.unit_words(1, "runs") == "1 run" and words.unit_words(3, "weeks") == "3 weeks"


def test_a_simulation_row_opens_the_timeline_at_its_event_with_the_drafts_advice(client, clinician, pack):
    from rules import simulation
    from rules.selectors import rule_spec, rules_with_children
    from rules.services import rule_save

    client.history(*[run(at=day(-40 + n), external_id=f"easy-{n}") for n in range(60)])  # two pages of events
    client.history(run(at=day(-1), pain_during=6, external_id="sore"))
    rule = rules_with_children().get(key="pain-stop")
    spec = rule_spec(rule)
    spec["parameters"] = [{**p, "value": 7} if p["name"] == "threshold" else p for p in spec["parameters"]]
    rule_save(spec=spec, rule=rule)
    job = simulation.simulation_store(simulation.ruleset_simulate(days=200))
    sore = Event.objects.get(external_id="sore")
    [row] = simulation.simulation_rows(simulation.simulation_result(job), rule="pain-stop", kind="disappear")
    url = registry_source().fact_url(row.event.subject, row.event.fact_id, simulation=str(job.pk))
    assert url == f"{MEMBERS}{sore.member_id}/change/?event={sore.pk}&simulation={job.pk}#event-{sore.pk}"
    page = clinician.get(url).content.decode()
    section = page.split(f'id="event-{sore.pk}"')[1].split("</section>")[0]
    assert "coaching-target" in page.split(f'id="event-{sore.pk}"')[0][-80:]
    assert "Stop when it hurts" in section  # what the event got
    assert "With the draft" in section and "No longer</span> Stop when it hurts" in section
    assert coaching_admin.TIMELINE_SIMULATION in page
    # An event of an older page opens on its page.
    easy = Event.objects.get(external_id="easy-0")
    older = clinician.get(f"{MEMBERS}{easy.member_id}/change/?event={easy.pk}").content.decode()
    assert f'id="event-{easy.pk}"' in older


def registry_source():
    from rules.registry import registry

    return registry.fact_source()


def test_try_this_event_fills_try_it_in_the_members_local_time(client, clinician, pack):
    plus_two = dt.timezone(dt.timedelta(hours=2))
    client.history(run(at=dt.datetime(2026, 3, 9, 7, 30, tzinfo=plus_two), pain_during=6, external_id="sore"))
    sore = Event.objects.get(external_id="sore")
    page = clinician.get(f"{MEMBERS}{sore.member_id}/change/").content.decode()
    link = html.unescape(re.search(r'<a class="coaching-try" href="([^"]+)">Try this event</a>', page).group(1))
    form = clinician.get(link).content.decode()
    assert 'name="occurred_at" value="2026-03-09T07:30"' in form  # the member's own clock ...
    assert '<option value="120" selected>UTC+02:00</option>' in form  # ... and offset
    assert 'name="data_pain_during" value="6"' in form and f'<option value="{sore.member_id}" selected>' in form
    assert f'name="replacing" value="{sore.pk}"' in form
    tried = clinician.post(
        link,
        {
            "fact_type": "run",
            "_shown_type": "run",
            "occurred_at": "2026-03-09T07:30",
            "offset": "120",
            "subject": str(sore.member_id),
            "data_distance_km": "3",
            "data_duration_min": "20",
            "data_pain_during": "6",
            "replacing": str(sore.pk),
        },
    ).content.decode()
    assert tried.index('id="try-result"') < tried.index('id="try-form"')  # the result above the form
    result = tried.split('id="try-result"')[1].split('id="try-form"')[0]
    # The stored run it stands for is left out of the history: no cooldown from itself.
    assert 'data-rule="pain-stop"' in result and "Cooling down" not in result


def test_a_referral_in_force_is_told_once_and_the_other_events_are_tagged(history, clinician):
    history.send(pain(at=day(5), pain=3, external_id="pain-2"), expect=201)
    history.send(pain(at=day(6), pain=2, external_id="pain-3"), expect=201)
    page = clinician.get(member_page()).content.decode()
    told = [
        external_id
        for external_id in ("pain-1", "pain-2", "pain-3")
        if "Under referral at the time (since" in section(page, external_id)
    ]
    assert told == ["pain-1"]  # the oldest event under it tells it in full
    assert all("Under referral at the time" in section(page, external_id) for external_id in ("pain-2", "pain-3"))


def test_the_member_list_says_when_the_first_event_happened_not_when_the_record_was_made(history, clinician):
    text = visible(clinician.get(MEMBERS))
    assert "First event" in text and "First seen" not in text
    assert words.local_moment(day(-1), 0) in text  # the clearance, the member's first event


def test_an_increase_below_zero_reads_as_the_decrease_it_is():
    values = dict(words.figure_values({"long_run_increase_pct": -31.25, "weekly_distance_increase_pct": 12.5}))
    assert values == {"Shorter than the longest run of 30 days by": "31%", "Weekly distance increase": "12%"}
