"""Reads for the clinician's admin pages: live-versus-draft status, version history, the change
log in words, statistics."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.db.models import JSONField, OuterRef, QuerySet, Subquery
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from rules.admin.describe import spec_describe
from rules.models import RuleChange, RulesetVersion
from rules.packs import MSG_OPERATOR_PUBLISHED, RulesetDiff, ruleset_diff, settings_diff, spec_comparable, spec_diff
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
        # Normalized on both sides: a version published before a field existed reads with its default.
        published = {s["key"]: spec_comparable(s) for s in (self.live.snapshot if self.live else [])}
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


def _rule_cell(name: str, key: str) -> SafeString:
    return format_html('<b>{}</b> <span class="rules-key">{}</span>', name or key, key)


def diff_html(diff: RulesetDiff) -> SafeString:
    """A diff as a small HTML table for admin pages: each rule by its name (its key small beside it)."""
    if diff.empty:
        return format_html("<p>{}</p>", "No differences.")
    rows = [
        format_html(
            '<tr class="diff-changed diff-settings"><td>{}</td><td>{}</td><td class="diff-before">{}</td>'
            '<td class="diff-after">{}</td></tr>',
            format_html("<b>{}</b>", "The ruleset's settings, for every rule") if index == 0 else "",
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
                    '<tr class="diff-{}"><td>{}</td><td colspan="3">{}</td></tr>',
                    rule.action,
                    _rule_cell(rule.name, rule.key),
                    {"added": "a new rule", "removed": "the rule is removed"}.get(rule.action, rule.action),
                )
            )
            continue
        for index, (what, before, after) in enumerate(rule.changes):
            rows.append(
                format_html(
                    '<tr class="diff-changed"><td>{}</td><td>{}</td><td class="diff-before">{}</td>'
                    '<td class="diff-after">{}</td></tr>',
                    _rule_cell(rule.name, rule.key) if index == 0 else "",
                    what,
                    before,
                    after,
                )
            )
    return format_html(
        '<table class="rules-diff"><thead><tr><th>Rule</th><th>What</th><th>Before</th>'
        "<th>After</th></tr></thead><tbody>{}</tbody></table>",
        format_html_join("", "{}", ((row,) for row in rows)),
    )


# -- the change log ----------------------------------------------------------------------------
def change_diff(change: RuleChange) -> RulesetDiff:
    """What one recorded change did, as a diff (a rule's fields, or the ruleset's settings)."""
    if change.is_publish:
        return RulesetDiff(rules=[])
    if change.is_settings:
        return RulesetDiff(rules=[], settings=settings_diff(change.before, change.after))
    diff = spec_diff(change.before, change.after)
    return RulesetDiff(rules=[diff] if diff.action != "same" else [])


def change_summary(change: RuleChange, *, limit: int | None = None) -> str:
    """One recorded change in a line of words: a new rule's sentence, or what changed
    (cut to ``limit`` characters, if given, with an ellipsis)."""
    if change.is_publish:
        after = change.after or {}
        summary = MSG_OPERATOR_PUBLISHED.format(number=after.get("version", "?"), comment=after.get("comment", ""))
    elif change.action == "created" and change.after:
        summary = f"New rule: {spec_describe(change.after)}"
    elif change.action == "deleted":
        summary = "Rule deleted"
    else:
        diff = change_diff(change)
        lines = [*diff.settings, *(line for rule in diff.rules for line in rule.changes)]
        summary = "; ".join(f"{what}: {before} → {after}" for what, before, after in lines) or "No difference"
    return summary if limit is None or len(summary) <= limit else summary[: limit - 1].rstrip() + "…"
