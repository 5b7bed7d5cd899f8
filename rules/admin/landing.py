"""How advice lands: per rule and over a chosen range of days, the advice given (current and
withdrawn), the subjects it reached, how its cards were received where they were shown (accepted,
or overridden and why), its firings per week, and the marks that call for a review.

Advice counts on the day of the event it belongs to (``FactSource.advice_statistics``), so a
backfill spreads over the days it covers; feedback comes from the domain
(``FactSource.feedback_statistics``). The statistics page lists every rule; each rule has a page
of its own with the subjects it reached. Both are thin views over ``landing_statistics``.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from rules.admin.views import PERM_VIEW, _context, _render, _require
from rules.conf import rules_settings
from rules.models import Rule
from rules.registry import FactSource, registry
from rules.selectors import version_live

OFF = "switched off"
OFF_IN_DRAFT = "switched off in the draft (not yet published)"
NOT_PUBLISHED = "not yet published"
DELETED = "deleted"
DEFAULT_DAYS = 30
MAX_DAYS = 366
# The default range may run a day or two past today: an event's own date can be ahead of the server's.
DAYS_AHEAD_MAX = 2

# The marks that call a rule for review, in a clinician's words (tests reuse these).
MARK_OVERRIDDEN = "Often overridden: {pct} % of its {cards} cards with feedback."
MARK_JUMP = "Its firings jumped: {count} in the week from {week}, against {before} a week before that on average."
MSG_RANGE_ORDER = "The first day must come before the last."
MSG_RANGE_LONG = f"Choose at most {MAX_DAYS} days."


def day_words(day: dt.date) -> str:
    return date_format(day, "DATE_FORMAT")


class RangeForm(forms.Form):
    first = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    last = forms.DateField(label="to", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        first, last = cleaned.get("first"), cleaned.get("last")
        if first and last:
            if first > last:
                raise forms.ValidationError(MSG_RANGE_ORDER)
            if (last - first).days + 1 > MAX_DAYS:
                raise forms.ValidationError(MSG_RANGE_LONG)
        return cleaned


@dataclass
class RuleLanding:
    """How one rule's advice landed over the range."""

    key: str
    name: str
    severity: str  # in words
    state: str  # "" (on), OFF, OFF_IN_DRAFT, NOT_PUBLISHED or DELETED
    daily: list[tuple[dt.date, int, int]]  # (day, given and standing, given then withdrawn)
    weekly: list[tuple[dt.date, int]]  # (first day of the week, advice given that week), oldest first
    subjects: set[str] | None  # reached with advice that stands; None: the domain cannot say
    accepted: int = 0
    overridden: int = 0
    reasons: Counter = field(default_factory=Counter)
    marks: list[str] = field(default_factory=list)

    @property
    def current(self) -> int:
        return sum(current for _, current, _ in self.daily)

    @property
    def withdrawn(self) -> int:
        return sum(withdrawn for _, _, withdrawn in self.daily)

    @property
    def given(self) -> int:
        return self.current + self.withdrawn

    @property
    def cards(self) -> int:
        return self.accepted + self.overridden

    @property
    def accepted_pct(self) -> float | None:
        return 100 * self.accepted / self.cards if self.cards else None

    @property
    def overridden_pct(self) -> float | None:
        return 100 * self.overridden / self.cards if self.cards else None

    @property
    def switched_off(self) -> bool:
        return self.state in (OFF, OFF_IN_DRAFT)

    @property
    def reasons_in_order(self) -> list[tuple[str, int]]:
        return sorted(self.reasons.items(), key=lambda item: (-item[1], item[0]))


@dataclass
class Landing:
    rules: list[RuleLanding]
    first_day: dt.date
    last_day: dt.date
    weekly_top: int  # the busiest week of any rule: every weekly chart shares it
    subjects_known: bool
    feedback_known: bool

    @property
    def given(self) -> int:
        return sum(r.given for r in self.rules)

    @property
    def withdrawn(self) -> int:
        return sum(r.withdrawn for r in self.rules)

    @property
    def marked(self) -> list[RuleLanding]:
        return [r for r in self.rules if r.marks]


def _rule_states() -> dict[str, tuple[str, str, str]]:
    """Each rule of the live version or the draft: key -> (name, severity code, state)."""
    live = version_live()
    published = {spec["key"]: spec for spec in (live.snapshot if live else [])}
    draft = {r.key: r for r in Rule.objects.only("key", "name", "severity", "enabled")}
    states = {}
    for key in published.keys() | draft.keys():
        spec, rule = published.get(key), draft.get(key)
        if spec is not None and spec.get("enabled", True) is False:
            state = OFF
        elif rule is not None and not rule.enabled:
            state = OFF_IN_DRAFT
        elif spec is None:
            state = NOT_PUBLISHED
        else:
            state = ""
        name, severity = (rule.name, rule.severity) if rule else (spec["name"], spec["severity"])
        states[key] = (name, severity, state)
    return states


def weeks_of(first: dt.date, last: dt.date) -> list[dt.date]:
    """The first days of the 7-day weeks that end on ``last``, back to the one holding ``first``."""
    starts = []
    start = last - dt.timedelta(days=6)
    while start + dt.timedelta(days=6) >= first:
        starts.append(max(start, first))
        start -= dt.timedelta(days=7)
    return list(reversed(starts))


def _marks(landing: RuleLanding) -> list[str]:
    marks = []
    if landing.cards >= rules_settings.LANDING_OVERRIDE_MIN_CARDS and (landing.overridden_pct or 0) > float(
        rules_settings.LANDING_OVERRIDE_PCT
    ):
        marks.append(MARK_OVERRIDDEN.format(pct=f"{landing.overridden_pct:.0f}", cards=landing.cards))
    counts = [count for _, count in landing.weekly]
    if len(counts) >= 2:
        latest, before = counts[-1], counts[:-1]
        average = sum(before) / len(before)
        if latest >= rules_settings.LANDING_JUMP_MIN and latest > float(rules_settings.LANDING_JUMP_FACTOR) * average:
            marks.append(
                MARK_JUMP.format(
                    count=latest, week=day_words(landing.weekly[-1][0]), before=f"{average:.1f}".rstrip("0").rstrip(".")
                )
            )
    return marks


def landing_statistics(*, first: dt.date | None = None, last: dt.date | None = None) -> Landing:
    """Every rule's landing over ``first`` to ``last`` (default: the last 30 days, today included,
    and a day or two ahead when events dated ahead of the server have advice)."""
    source = registry.fact_source()
    today = timezone.localdate()
    chosen = last is not None
    first = first or today - dt.timedelta(days=DEFAULT_DAYS - 1)
    tallies = list(source.advice_statistics(first_day=first)) if source else []
    if not chosen:
        ahead = today + dt.timedelta(days=DAYS_AHEAD_MAX)
        last = max([today, *(t.day for t in tallies if t.day <= ahead)])
    feedback = list(source.feedback_statistics(first_day=first, last_day=last)) if source else []
    span = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    per_day: dict[str, dict[dt.date, list[int]]] = {}
    reached: dict[str, set[str]] = {}
    subjects_known = True
    for tally in tallies:
        if not first <= tally.day <= last:
            continue
        counts = per_day.setdefault(tally.rule_key, {}).setdefault(tally.day, [0, 0])
        counts[0] += tally.current
        counts[1] += tally.withdrawn
        if tally.subject is None:
            subjects_known = False
        elif tally.current:
            reached.setdefault(tally.rule_key, set()).add(tally.subject)
    received: dict[str, list[Any]] = {}
    for tally in feedback:
        if first <= tally.day <= last:
            into = received.setdefault(tally.rule_key, [0, 0, Counter()])
            into[0] += tally.accepted
            into[1] += tally.overridden
            into[2].update(tally.reasons)
    states = _rule_states()
    starts = weeks_of(first, last)
    rules = []
    for key in states.keys() | per_day.keys():
        name, severity, state = states.get(key, ("(deleted rule)", "", DELETED))
        counts = per_day.get(key, {})
        daily = [(day, *counts.get(day, (0, 0))) for day in span]
        weekly = []
        for index, start in enumerate(starts):
            end = starts[index + 1] if index + 1 < len(starts) else last + dt.timedelta(days=1)
            weekly.append((start, sum(c + w for day, c, w in daily if start <= day < end)))
        accepted, overridden, reasons = received.get(key, (0, 0, Counter()))
        landing = RuleLanding(
            key=key,
            name=name,
            severity=registry.severity_label(severity) if severity else "",
            state=state,
            daily=daily,
            weekly=weekly,
            subjects=reached.get(key, set()) if subjects_known else None,
            accepted=accepted,
            overridden=overridden,
            reasons=reasons,
        )
        landing.marks = _marks(landing)
        rules.append(landing)
    rules.sort(key=lambda r: (not r.marks, r.switched_off, r.name.lower()))
    top = max((count for r in rules for _, count in r.weekly), default=0)
    return Landing(
        rules=rules,
        first_day=first,
        last_day=last,
        weekly_top=top,
        subjects_known=subjects_known,
        # A domain that takes no feedback keeps FactSource's own hook.
        feedback_known=source is not None and type(source).feedback_statistics is not FactSource.feedback_statistics,
    )


def weekly_chart_svg(
    weekly: list[tuple[dt.date, int]], *, top: int, width: int = 200, height: int = 64, axis: bool = True
) -> SafeString:
    """Advice given per week as bars on a date axis (each week's first day under its bar), with the
    week and its count as a tooltip; ``top`` is the count a full-height bar stands for, so that
    several charts share one scale."""
    top = max(top, 1)
    label_height = 14 if axis else 0
    usable = height - label_height - 2
    bar = width / max(len(weekly), 1)
    every = 1 if len(weekly) <= 6 else 2 if len(weekly) <= 12 else 4

    def one(index: int, start: dt.date, count: int) -> SafeString:
        size = max(count / top * usable, 1) if count else 0.5
        x = index * bar
        tip = f"Week from {day_words(start)}: {count} given"
        label = (
            format_html(
                '<text x="{}" y="{}" class="axis">{}</text>',
                f"{x + 1:.1f}",
                height - 3,
                date_format(start, "MONTH_DAY_FORMAT"),
            )
            if axis and index % every == 0
            else ""
        )
        return format_html(
            '<rect x="{}" y="{}" width="{}" height="{}" class="{}"><title>{}</title></rect>{}',
            f"{x:.1f}",
            f"{height - label_height - size:.1f}",
            f"{max(bar - 2, 1):.1f}",
            f"{size:.1f}",
            "bar" if count else "bar-empty",
            tip,
            label,
        )

    bars = format_html_join("", "{}", ((one(i, start, count),) for i, (start, count) in enumerate(weekly)))
    return format_html(
        '<svg class="rules-chart rules-weekly" width="{}" height="{}" viewBox="0 0 {} {}" role="img" '
        'aria-label="advice given per week">{}</svg>',
        width,
        height,
        width,
        height,
        bars,
    )


# -- pages ------------------------------------------------------------------------------------
def _range(request: HttpRequest) -> tuple[RangeForm, dt.date | None, dt.date | None]:
    form = RangeForm(request.GET if "first" in request.GET or "last" in request.GET else None)
    if form.is_bound and form.is_valid():
        return form, form.cleaned_data["first"], form.cleaned_data["last"]
    return form, None, None


def _landing_url(key: str, landing: Landing) -> str:
    query = urlencode({"first": landing.first_day.isoformat(), "last": landing.last_day.isoformat()})
    return f"{reverse('admin:rules_rule_landing', args=[key])}?{query}"


def _row(rule: RuleLanding, landing: Landing) -> dict[str, Any]:
    return {
        "rule": rule,
        "url": _landing_url(rule.key, landing),
        "chart": weekly_chart_svg(rule.weekly, top=landing.weekly_top, axis=True),
    }


def statistics_view(model_admin: Any, request: HttpRequest) -> HttpResponse:
    """How every rule's advice landed over a chosen range of days, the rules marked for review first."""
    _require(request, PERM_VIEW)
    form, first, last = _range(request)
    landing = landing_statistics(first=first, last=last)
    if not form.is_bound:
        form = RangeForm(initial={"first": landing.first_day, "last": landing.last_day})
    return _render(
        request,
        "statistics.html",
        _context(
            model_admin,
            request,
            "How advice lands",
            form=form,
            landing=landing,
            rows=[_row(rule, landing) for rule in landing.rules],
            first_words=day_words(landing.first_day),
            last_words=day_words(landing.last_day),
            has_source=registry.fact_source() is not None,
        ),
    )


def rule_landing_view(model_admin: Any, request: HttpRequest, key: str) -> HttpResponse:
    """One rule's landing over a chosen range: its figures, its weekly firings, the reasons its cards
    were overridden and every subject it reached, each linking to the domain's page about them."""
    _require(request, PERM_VIEW)
    form, first, last = _range(request)
    landing = landing_statistics(first=first, last=last)
    rule = next((r for r in landing.rules if r.key == key), None)
    if rule is None:
        raise Http404("There is no rule with this key, and no advice of one.")
    if not form.is_bound:
        form = RangeForm(initial={"first": landing.first_day, "last": landing.last_day})
    source = registry.fact_source()
    reached = sorted(rule.subjects or ())
    names = source.subjects_words(reached) if source else {subject: subject for subject in reached}
    subjects = sorted(
        ((names.get(subject, subject), source.subject_url(subject) if source else None) for subject in reached),
        key=lambda item: item[0].lower(),
    )
    editable = Rule.objects.filter(key=key).values_list("pk", flat=True).first()
    return _render(
        request,
        "landing.html",
        _context(
            model_admin,
            request,
            f"How “{rule.name}” lands",
            form=form,
            landing=landing,
            r=rule,
            chart=weekly_chart_svg(rule.weekly, top=max((c for _, c in rule.weekly), default=0), width=640, height=120),
            chart_top=max((c for _, c in rule.weekly), default=0),
            reached=subjects,
            first_words=day_words(landing.first_day),
            last_words=day_words(landing.last_day),
            editor_url=reverse("admin:rules_rule_change", args=[editable]) if editable else "",
            all_url=f"{reverse('admin:rules_rule_statistics')}?"
            + urlencode({"first": landing.first_day.isoformat(), "last": landing.last_day.isoformat()}),
        ),
    )
