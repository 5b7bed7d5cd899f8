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

from rules.describe import spec_describe
from rules.models import RuleChange, RulesetVersion
from rules.packs import RulesetDiff, ruleset_diff, settings_diff, spec_comparable, spec_diff
from rules.registry import registry
from rules.selectors import rules_with_children, ruleset_draft_settings, ruleset_draft_specs, version_live

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


def change_summary(change: RuleChange, *, limit: int = 300) -> str:
    """One recorded change in a line of words: a new rule's sentence, or what changed."""
    if change.action == "created" and change.after:
        return f"New rule: {spec_describe(change.after)}"
    if change.action == "deleted":
        return "Rule deleted"
    diff = change_diff(change)
    lines = [*diff.settings, *(line for rule in diff.rules for line in rule.changes)]
    return "; ".join(f"{what}: {before} → {after}" for what, before, after in lines)[:limit] or "No difference"


# -- statistics -------------------------------------------------------------------------------
@dataclass
class RuleStatistics:
    key: str
    name: str
    severity: str
    last_7: int
    last_30: int
    daily: list[tuple[dt.date, int]]

    def chart(self) -> SafeString:
        return bar_chart_svg(self.daily)


def rule_statistics(*, days: int = 30, now: dt.datetime | None = None) -> list[RuleStatistics]:
    """Per rule of the draft (and any rule that still has advice): advice per day over ``days``."""
    source = registry.fact_source()
    today = timezone.localdate(now or timezone.now())
    first = today - dt.timedelta(days=days - 1)
    since = timezone.make_aware(dt.datetime.combine(first, dt.time.min))
    counts = source.advice_counts(since=since) if source else {}
    rules = {r.key: (r.name, r.severity) for r in rules_with_children().only("key", "name", "severity")}
    keys = sorted(rules.keys() | counts.keys())
    stats = []
    week_start = today - dt.timedelta(days=6)
    for key in keys:
        per_day = counts.get(key, {})
        daily = [(first + dt.timedelta(days=i), int(per_day.get(first + dt.timedelta(days=i), 0))) for i in range(days)]
        name, severity = rules.get(key, ("(deleted rule)", ""))
        stats.append(
            RuleStatistics(
                key=key,
                name=name,
                severity=severity,
                last_7=sum(n for day, n in daily if day >= week_start),
                last_30=sum(n for _, n in daily),
                daily=daily,
            )
        )
    return stats


def bar_chart_svg(daily: list[tuple[dt.date, int]], *, width: int = 240, height: int = 36) -> SafeString:
    """A tiny inline bar chart, one bar per day, with the day and count as a tooltip."""
    top = max((n for _, n in daily), default=0) or 1
    bar = width / max(len(daily), 1)
    bars = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" class="{}"><title>{}: {}</title></rect>',
        (
            (
                f"{i * bar:.1f}",
                f"{height - max(n / top * (height - 2), 1 if n else 0.5):.1f}",
                f"{max(bar - 1, 1):.1f}",
                f"{max(n / top * (height - 2), 1 if n else 0.5):.1f}",
                "bar" if n else "bar-empty",
                day.isoformat(),
                n,
            )
            for i, (day, n) in enumerate(daily)
        ),
    )
    return format_html(
        '<svg class="rules-chart" width="{}" height="{}" viewBox="0 0 {} {}" role="img" '
        'aria-label="advice per day">{}</svg>',
        width,
        height,
        width,
        height,
        bars,
    )
