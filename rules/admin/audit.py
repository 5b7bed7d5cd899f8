"""Reads for the clinician's admin pages: live-versus-draft status, version history, the change
log in words, statistics."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.db.models import JSONField, OuterRef, QuerySet, Subquery
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from rules.admin.describe import spec_describe
from rules.models import Rule, RuleChange, RulesetVersion
from rules.packs import RulesetDiff, ruleset_diff, settings_diff, spec_comparable, spec_diff
from rules.registry import registry
from rules.selectors import ruleset_draft_settings, ruleset_draft_specs, version_live

LIVE, CHANGED, NEW = "live", "changed", "new"
STATUS_LABELS = {LIVE: "live", CHANGED: "draft: changed", NEW: "draft: not yet published"}


@dataclass
class DraftState:
    """The live version, the draft's rules and what the draft changes against the live version."""

    live: RulesetVersion | None
    diff: RulesetDiff
    draft_specs: list[dict[str, Any]]

    @cached_property
    def statuses(self) -> dict[str, str]:
        """Each draft rule's key -> live (same as the live version), changed, or new."""
        published = {s["key"]: s for s in (self.live.snapshot if self.live else [])}
        statuses = {}
        for spec in self.draft_specs:
            live_spec = published.get(spec["key"])
            if live_spec is None:
                statuses[spec["key"]] = NEW
            else:
                statuses[spec["key"]] = LIVE if spec_comparable(spec) == live_spec else CHANGED
        return statuses


def draft_state() -> DraftState:
    """The live version and what the draft (its rules and its settings) changes against it."""
    live = version_live()
    draft = ruleset_draft_specs()
    diff = ruleset_diff(
        live.snapshot if live else [],
        draft,
        settings_before=live.settings if live else None,
        settings_after=ruleset_draft_settings(),
    )
    return DraftState(live=live, diff=diff, draft_specs=draft)


def versions_with_previous(versions: QuerySet[RulesetVersion]) -> QuerySet[RulesetVersion]:
    """``versions`` with ``previous_snapshot`` and ``previous_settings`` (the version before's
    rules and settings, or None) and ``live_number`` annotated, so a list of versions and their
    diffs costs one query."""
    newest_first = RulesetVersion.objects.order_by("-number")
    return versions.annotate(
        previous_snapshot=Subquery(
            newest_first.filter(number__lt=OuterRef("number")).values("snapshot")[:1], output_field=JSONField()
        ),
        previous_settings=Subquery(
            newest_first.filter(number__lt=OuterRef("number")).values("settings")[:1], output_field=JSONField()
        ),
        live_number=Subquery(newest_first.values("number")[:1]),
    )


def version_diff(version: RulesetVersion) -> RulesetDiff:
    """What ``version`` changed against the version before it."""
    if hasattr(version, "previous_snapshot"):
        previous, previous_settings = version.previous_snapshot, version.previous_settings
    else:
        previous, previous_settings = (
            RulesetVersion.objects.filter(number__lt=version.number)
            .order_by("-number")
            .values_list("snapshot", "settings")
            .first()
        ) or (None, None)
    return ruleset_diff(
        previous or [], version.snapshot, settings_before=previous_settings, settings_after=version.settings
    )


def diff_html(diff: RulesetDiff) -> SafeString:
    """A diff as a small HTML table for admin pages."""
    if diff.empty:
        return format_html("<p>{}</p>", "No differences.")
    rows = [
        format_html(
            '<tr class="diff-changed diff-settings"><td>{}</td><td>{}</td><td>{}</td><td class="diff-before">{}</td>'
            '<td class="diff-after">{}</td></tr>',
            format_html("<b>{}</b>", "Ruleset") if index == 0 else "",
            "settings for every rule" if index == 0 else "",
            what,
            before,
            after,
        )
        for index, (what, before, after) in enumerate(diff.settings)
    ]
    for rule in diff.rules:
        if rule.action != "changed":
            rows.append(
                format_html(
                    '<tr class="diff-{}"><td><b>{}</b></td><td>{}</td><td colspan="3">{}</td></tr>',
                    rule.action,
                    rule.key,
                    rule.name,
                    f"rule {rule.action}",
                )
            )
            continue
        for index, (what, before, after) in enumerate(rule.changes):
            rows.append(
                format_html(
                    '<tr class="diff-changed"><td>{}</td><td>{}</td><td>{}</td><td class="diff-before">{}</td>'
                    '<td class="diff-after">{}</td></tr>',
                    format_html("<b>{}</b>", rule.key) if index == 0 else "",
                    rule.name if index == 0 else "",
                    what,
                    before,
                    after,
                )
            )
    return format_html(
        '<table class="rules-diff"><thead><tr><th>Rule</th><th>Name</th><th>What</th><th>Before</th>'
        "<th>After</th></tr></thead><tbody>{}</tbody></table>",
        format_html_join("", "{}", ((row,) for row in rows)),
    )


# -- the change log ----------------------------------------------------------------------------
def change_diff(change: RuleChange) -> RulesetDiff:
    """What one recorded change did, as a diff (a rule's fields, or the ruleset's settings)."""
    if change.is_settings:
        return RulesetDiff(rules=[], settings=settings_diff(change.before, change.after))
    diff = spec_diff(change.before, change.after)
    return RulesetDiff(rules=[diff] if diff.action != "same" else [])


def change_summary(change: RuleChange, *, limit: int | None = None) -> str:
    """One recorded change in a line of words: a new rule's sentence, or what changed
    (cut to ``limit`` characters, if given, with an ellipsis)."""
    if change.action == "created" and change.after:
        summary = f"New rule: {spec_describe(change.after)}"
    elif change.action == "deleted":
        summary = "Rule deleted"
    else:
        diff = change_diff(change)
        lines = [*diff.settings, *(line for rule in diff.rules for line in rule.changes)]
        summary = "; ".join(f"{what}: {before} → {after}" for what, before, after in lines) or "No difference"
    return summary if limit is None or len(summary) <= limit else summary[: limit - 1].rstrip() + "…"


# -- statistics -------------------------------------------------------------------------------
OFF = "switched off"
OFF_IN_DRAFT = "switched off in the draft (not yet published)"
NOT_PUBLISHED = "not yet published"
DELETED = "deleted"
# The chart may run a day or two past today: an event's own date can be ahead of the server's.
DAYS_AHEAD_MAX = 2


@dataclass
class RuleStatistics:
    """One rule's advice per day (current and withdrawn), and how many subjects it reached."""

    key: str
    name: str
    severity: str  # in words
    state: str  # "" (on), OFF, OFF_IN_DRAFT, NOT_PUBLISHED or DELETED
    daily: list[tuple[dt.date, int, int]]  # (day, current, withdrawn)
    last_7: int
    last_30: int
    withdrawn: int  # over the whole period
    subjects: int | None  # subjects with current advice over the whole period; None: not known
    scale: int  # the largest day of any rule: every chart shares it

    @property
    def switched_off(self) -> bool:
        return self.state in (OFF, OFF_IN_DRAFT)

    def chart(self) -> SafeString:
        return bar_chart_svg(self.daily, top=self.scale)


@dataclass
class AdviceStatistics:
    rules: list[RuleStatistics]
    first_day: dt.date
    last_day: dt.date
    scale: int
    subjects_known: bool

    @property
    def total_7(self) -> int:
        return sum(r.last_7 for r in self.rules)

    @property
    def total_30(self) -> int:
        return sum(r.last_30 for r in self.rules)

    @property
    def total_withdrawn(self) -> int:
        return sum(r.withdrawn for r in self.rules)


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


def rule_statistics(*, days: int = 30, now: dt.datetime | None = None) -> AdviceStatistics:
    """Advice per rule (of the live version, the draft, or that still has advice) and per day
    over the last ``days`` days, counted on the day of the event it belongs to; all charts on
    one scale."""
    source = registry.fact_source()
    today = timezone.localdate(now or timezone.now())
    first = today - dt.timedelta(days=days - 1)
    tallies = list(source.advice_statistics(first_day=first)) if source else []
    last = max([today, *(t.day for t in tallies if t.day <= today + dt.timedelta(days=DAYS_AHEAD_MAX))])
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
    scale = max((sum(n) for rule in per_day.values() for n in rule.values()), default=0)
    states = _rule_states()
    week_start = today - dt.timedelta(days=6)
    stats = []
    for key in sorted(states.keys() | per_day.keys()):
        name, severity, state = states.get(key, ("(deleted rule)", "", DELETED))
        counts = per_day.get(key, {})
        daily = [(day, *counts.get(day, (0, 0))) for day in span]
        stats.append(
            RuleStatistics(
                key=key,
                name=name,
                severity=registry.severity_label(severity) if severity else "",
                state=state,
                daily=daily,
                last_7=sum(current for day, current, _ in daily if day >= week_start),
                last_30=sum(current for _, current, _ in daily),
                withdrawn=sum(withdrawn for _, _, withdrawn in daily),
                subjects=len(reached.get(key, ())) if subjects_known else None,
                scale=scale,
            )
        )
    return AdviceStatistics(rules=stats, first_day=first, last_day=last, scale=scale, subjects_known=subjects_known)


def bar_chart_svg(
    daily: list[tuple[dt.date, int, int]], *, top: int | None = None, width: int = 240, height: int = 36
) -> SafeString:
    """A tiny inline bar chart, one bar per day (current advice, withdrawn advice stacked on top),
    with the day and counts as a tooltip. ``top`` is the count a full-height bar stands for
    (default: this chart's largest day), so that several charts can share one scale."""
    top = max(top or max((c + w for _, c, w in daily), default=0), 1)
    bar = width / max(len(daily), 1)
    usable = height - 2

    def rects(i: int, day: dt.date, current: int, withdrawn: int) -> SafeString:
        x, w = f"{i * bar:.1f}", f"{max(bar - 1, 1):.1f}"
        tip = f"{day.isoformat()}: {current} given" + (f", {withdrawn} withdrawn" if withdrawn else "")
        if not current and not withdrawn:
            return format_html(
                '<rect x="{}" y="{}" width="{}" height="0.5" class="bar-empty"><title>{}</title></rect>',
                x,
                f"{height - 0.5:.1f}",
                w,
                tip,
            )
        # A day with any advice shows at least one pixel, however tall the largest day is.
        given = max(current / top * usable, 1) if current else 0
        taken = max(withdrawn / top * usable, 1) if withdrawn else 0
        parts = [("bar", height - given, given), ("bar-withdrawn", height - given - taken, taken)]
        return format_html_join(
            "",
            '<rect x="{}" y="{}" width="{}" height="{}" class="{}"><title>{}</title></rect>',
            ((x, f"{y:.1f}", w, f"{size:.1f}", kind, tip) for kind, y, size in parts if size),
        )

    bars = format_html_join("", "{}", ((rects(i, *row),) for i, row in enumerate(daily)))
    return format_html(
        '<svg class="rules-chart" width="{}" height="{}" viewBox="0 0 {} {}" role="img" '
        'aria-label="advice per day">{}</svg>',
        width,
        height,
        width,
        height,
        bars,
    )
