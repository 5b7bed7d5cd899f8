"""Rule packs (a ruleset as a JSON file clinics share) and readable diffs between rulesets.

A pack is ``{"format": "rules-pack", "format_version": 2, "ruleset_version": N,
"exported_at": "...", "settings": {"advice_limit": 3}, "rules": [spec, ...]}`` (format 1 had
no settings; it is still read). Exporting the live version and importing the file gives the
same ruleset back: the specs are stored normalized in both places. Importing validates
exactly as publishing does (bounds, engine limits, a test evaluation).

A domain may ship a default pack: ``pack_install`` installs it into an empty ruleset and,
later, stages a newer version of it over the installed one without touching what clinicians
changed (see its docstring).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.formats import date_format

from rules.internal.render import chips_from_placeholders
from rules.models import RuleChange, RulesetSettings, RulesetVersion
from rules.registry import registry
from rules.selectors import ruleset_draft_specs, version_live
from rules.services import (
    draft_replace,
    rule_save,
    ruleset_check,
    ruleset_publish,
    ruleset_settings_save,
)
from rules.spec import (
    EVIDENCE_DEFAULT,
    EVIDENCE_LEVELS,
    OPERATORS,
    PATTERNS,
    RULE_FIELDS,
    RULESET_SETTINGS,
    SINGLE,
    RuleValidationError,
    placeholder_labels,
    review_by_date,
    rule_field_label,
    safety_problems,
    settings_normalize,
    spec_normalize,
)

PACK_FORMAT = "rules-pack"
PACK_FORMAT_VERSION = 2

MSG_PACK_NOT_JSON = "This file is not a rule pack: it is not valid JSON."
MSG_PACK_FORMAT = (
    "This file is not a rule pack (expected a JSON object with “format”: “rules-pack” and a list of rules)."
)
MSG_PACK_VERSION = (
    "This rule pack was written by a newer version of the product (format {found}); it reads format {supported}."
)
MSG_PACK_EMPTY = "This rule pack has no rules."
MSG_PACK_INVALID = "The rule pack has problems; nothing was imported."
# A pack of the most rules with the longest texts fits with room to spare; beyond it a file is
# refused before it is read.
PACK_MAX_BYTES = 2 * 1024 * 1024
MSG_PACK_TOO_LARGE = (
    "This file is larger than 2 MiB, the most a rule pack can be, so nothing was imported. Check that it "
    "is the rule pack you meant, and that no text in it is longer than the rule editor allows."
)
PACK_MAX_DEPTH = 64  # a rule's deepest condition group nests a dozen levels
MSG_PACK_TOO_DEEP = "This file is not a rule pack: its JSON is nested far deeper than any rule pack."
MSG_PACK_SHAPE = "Not as a rule pack writes it: {expected}."
# What each part of a rule is in a pack (as exportpack writes it), checked before any rule is read.
_LISTS = ("steps", "conditions", "parameters")
_TEXTS = {
    "": ("key", "category", "severity", "pattern"),
    "steps": ("fact_type",),
    "conditions": ("field", "operator", "parameter"),
    "parameters": ("name", "kind"),
}


class PackError(Exception):
    """A pack that cannot be imported; ``errors`` maps "rule key: field" to messages."""

    def __init__(self, message: str, errors: Mapping[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = dict(errors or {})


@dataclass(frozen=True)
class Pack:
    """A parsed, validated pack: normalized rule specs and the ruleset's settings."""

    rules: list[dict[str, Any]]
    settings: dict[str, Any]


def pack_export(
    *, specs: Sequence[Mapping[str, Any]] | None = None, settings: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The live version (or ``specs`` and ``settings``) as a pack."""
    live = version_live()
    rules = list(specs) if specs is not None else (list(live.snapshot) if live else [])
    if settings is None:
        settings = live.settings if live and specs is None else None
    return {
        "format": PACK_FORMAT,
        "format_version": PACK_FORMAT_VERSION,
        "ruleset_version": live.number if live and specs is None else None,
        "exported_at": timezone.now().isoformat(timespec="seconds"),
        "settings": settings_normalize(settings),
        "rules": sorted(rules, key=lambda s: s["key"]),
    }


def pack_dumps(pack: Mapping[str, Any]) -> str:
    return json.dumps(pack, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def pack_read(text: str | bytes, *, safety: bool = True) -> Pack:
    """The pack's rules and settings, validated exactly as publishing validates them (bounds,
    engine limits, safety-critical rules, a test evaluation); raises PackError with every problem.
    ``safety=False``: an earlier version of a domain's own pack, read only to compare with."""
    size = len(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
    if size > PACK_MAX_BYTES:
        raise PackError(MSG_PACK_TOO_LARGE)
    try:
        pack = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise PackError(MSG_PACK_NOT_JSON) from None
    except RecursionError:
        raise PackError(MSG_PACK_TOO_DEEP) from None
    if _json_depth(pack) > PACK_MAX_DEPTH:
        raise PackError(MSG_PACK_TOO_DEEP)
    if not isinstance(pack, dict) or pack.get("format") != PACK_FORMAT or not isinstance(pack.get("rules"), list):
        raise PackError(MSG_PACK_FORMAT)
    found = pack.get("format_version", PACK_FORMAT_VERSION)
    if not isinstance(found, int) or found > PACK_FORMAT_VERSION:
        raise PackError(MSG_PACK_VERSION.format(found=found, supported=PACK_FORMAT_VERSION))
    rules = pack["rules"]
    if not rules:
        raise PackError(MSG_PACK_EMPTY)
    if not all(isinstance(rule, dict) for rule in rules):
        raise PackError(MSG_PACK_FORMAT)
    settings = pack.get("settings") or {}
    if not isinstance(settings, dict):
        raise PackError(MSG_PACK_FORMAT)
    shape = _shape_problems(rules)
    if shape:
        raise PackError(MSG_PACK_INVALID, shape)
    try:
        return Pack(rules=ruleset_check(rules, settings=settings, safety=safety), settings=settings_normalize(settings))
    except RuleValidationError as exc:
        raise PackError(MSG_PACK_INVALID, exc.errors) from None
    except RecursionError:  # a value nested deep enough to pass the parser, not the checks
        raise PackError(MSG_PACK_TOO_DEEP) from None


def _json_depth(value: Any) -> int:
    """How deeply lists and objects nest, counted without recursion: whether the parser
    overflows on a deep value depends on the machine's stack, this answer does not."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, depth)
            if depth > PACK_MAX_DEPTH:
                break
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _shape_problems(rules: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Parts of the rules that are not the kind of JSON value a pack holds there (a list where a
    text belongs, a text where a list of objects does): refused by name before validation."""
    problems: dict[str, list[str]] = {}
    for number, rule in enumerate(rules, start=1):
        owner = rule.get("key") if isinstance(rule.get("key"), str) and rule.get("key") else f"rule {number}"

        def texts(item: dict[str, Any], names: tuple[str, ...], path: str, owner: str = owner) -> None:
            for name in names:
                if item.get(name) is not None and not isinstance(item[name], str):
                    problems[f"{owner}: {path}{name}"] = [MSG_PACK_SHAPE.format(expected="a text")]

        texts(rule, _TEXTS[""], "")
        for head in _LISTS:
            items = rule.get(head)
            if items is None:
                continue
            if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
                problems[f"{owner}: {head}"] = [MSG_PACK_SHAPE.format(expected="a list of objects")]
                continue
            for index, item in enumerate(items):
                texts(item, _TEXTS[head], f"{head}.{index}.")
    return problems


def pack_import(
    *,
    specs: Sequence[Mapping[str, Any]],
    settings: Mapping[str, Any] | None = None,
    user: Any = None,
    origin: str = RuleChange.Origin.IMPORT,
) -> None:
    """Make the draft equal to the pack's rules (publish separately), recorded as a pack import."""
    draft_replace(specs=specs, settings=settings, user=user, origin=origin)


MSG_OPERATOR_PUBLISHED = "Published at once as version {number} by the operator's command: “{comment}”"


@transaction.atomic
def pack_publish_by_operator(*, pack: Pack, comment: str) -> RulesetVersion | None:
    """An operator's import that goes live at once (``importpack --publish``), with no clinician's
    approval: the draft becomes the pack and is published, both recorded in the change log as the
    operator's act (with the comment). None when the pack is live already: only the draft follows."""
    live = version_live()
    settings = settings_normalize(pack.settings)
    if (
        live is not None
        and [spec_comparable(spec) for spec in live.snapshot] == pack.rules
        and settings_normalize(live.settings) == settings
    ):
        pack_import(specs=pack.rules, settings=settings, origin=RuleChange.Origin.OPERATOR)
        return None
    first_change = RuleChange.objects.order_by("-id").values_list("id", flat=True).first() or 0
    pack_import(specs=pack.rules, settings=settings, origin=RuleChange.Origin.OPERATOR)
    version = ruleset_publish(
        specs=pack.rules, settings=settings, comment=comment, origin=RulesetVersion.Origin.OPERATOR
    )
    RuleChange.objects.filter(id__gt=first_change, origin=RuleChange.Origin.OPERATOR).update(
        origin_version=version.number
    )
    RuleChange.objects.create(
        rule_key=RuleChange.SETTINGS_KEY,
        action=RuleChange.PUBLISHED,
        before=None,
        after={"version": version.number, "comment": comment},
        origin=RuleChange.Origin.OPERATOR,
        origin_version=version.number,
    )
    return version


# -- installing and upgrading a domain's default pack -----------------------------------------
@dataclass
class PackInstall:
    """What ``pack_install`` did, as lists of rule keys."""

    added: list[str] = field(default_factory=list)  # new to the draft
    updated: list[str] = field(default_factory=list)  # untouched since an earlier version: replaced
    outdated: list[str] = field(default_factory=list)  # untouched since an earlier version, not upgraded
    kept: list[str] = field(default_factory=list)  # changed by a clinician: left as they are
    # Safety-critical, changed by a clinician in a way this version no longer allows: replaced.
    replaced: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)  # deleted by a clinician: not added back
    settings_set: bool = False
    published: int | None = None  # the version published (a first install only)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.replaced or self.settings_set or self.published)


def _deleted_keys(keys: set[str]) -> set[str]:
    """Of ``keys``, those whose last change in the audit trail is a deletion."""
    last: dict[str, str] = {}
    for key, action in (
        RuleChange.objects.filter(rule_key__in=keys).order_by("changed_at", "id").values_list("rule_key", "action")
    ):
        last[key] = action
    return {key for key, action in last.items() if action == "deleted"}


def pack_install(
    *,
    pack: Pack,
    earlier: Sequence[Pack] = (),
    upgrade: bool = False,
    comment: str,
    user: Any = None,
) -> PackInstall:
    """Install a domain's default ``pack`` into the draft; ``earlier`` are its previous versions.

    - Rules whose keys the draft lacks are added, unless a clinician deleted them (the audit
      trail says so); the ruleset settings are set when nobody ever saved them.
    - With ``upgrade``, a rule whose draft is exactly as an earlier version shipped it is
      replaced by this version's; without it, such rules are only reported (``outdated``).
      A rule a clinician changed is never touched (``kept``), unless it is safety-critical and
      the change is one this version does not allow (``replaced``: publishing it would be refused).
    - Nothing is published, except on a first install (no version was ever published), which
      publishes the pack so that advice is given at all. Everything else waits in the draft
      for clinicians to review, simulate and publish.

    Idempotent: a second call changes nothing.
    """
    result = PackInstall()
    origin = RuleChange.Origin.UPGRADE if upgrade else RuleChange.Origin.INSTALL
    previous: dict[str, list[dict[str, Any]]] = {}
    for older in earlier:
        for spec in older.rules:
            previous.setdefault(spec["key"], []).append(spec)
    # A rule installed from this very pack before packs carried evidence has the defaults there:
    # it is as this version shipped it then, so an upgrade gives it the pack's evidence.
    for spec in pack.rules:
        previous.setdefault(spec["key"], []).append(spec_without_evidence(spec))
    with transaction.atomic():
        first_install = not RulesetVersion.objects.exists()
        draft = {spec["key"]: spec_comparable(spec) for spec in ruleset_draft_specs()}
        deleted = _deleted_keys({spec["key"] for spec in pack.rules} - draft.keys())
        for spec in pack.rules:
            key, current = spec["key"], draft.get(spec["key"])
            if current is None:
                if key in deleted:
                    result.deleted.append(key)
                else:
                    rule_save(spec=spec, user=user, origin=origin)
                    result.added.append(key)
            elif current == spec:
                continue
            elif current in previous.get(key, []):
                if upgrade:
                    rule_save(spec=spec, user=user, origin=origin)
                    result.updated.append(key)
                else:
                    result.outdated.append(key)
            elif upgrade and safety_problems(current):
                rule_save(spec=spec, user=user, origin=origin)
                result.replaced.append(key)
            elif upgrade:
                result.kept.append(key)
        if not RulesetSettings.objects.exists():
            ruleset_settings_save(settings=pack.settings, user=user, origin=origin)
            result.settings_set = True
        if first_install:
            result.published = ruleset_publish(user=user, comment=comment, origin=RulesetVersion.Origin.INSTALL).number
    return result


# -- diffs ----------------------------------------------------------------------------------
@dataclass
class RuleDiff:
    key: str
    name: str
    action: str  # added, removed, changed
    changes: list[tuple[str, str, str]] = field(default_factory=list)  # (what, before, after)


@dataclass
class RulesetDiff:
    rules: list[RuleDiff]
    # The ruleset's own settings that differ: (label, before, after).
    settings: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.rules and not self.settings

    def count(self, action: str) -> int:
        return sum(1 for r in self.rules if r.action == action)

    def summary(self) -> str:
        parts = [f"{self.count(a)} {a}" for a in ("added", "changed", "removed") if self.count(a)]
        if self.settings:
            parts.append("settings changed")
        return ", ".join(parts) if parts else "no changes"


def _show(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def _plural(number: Any, unit: str) -> str:
    return f"{_show(number)} {unit}{'' if number == 1 else 's'}"


def _field_words(spec: Mapping[str, Any], name: str) -> str:
    """A rule field's value as a clinician reads it: labels for codes, chips for inserted values."""
    value = spec.get(name)
    if name == "severity":
        return registry.severity_label(value) if value else "—"
    if name == "category":
        return registry.category_label(value) if value else "—"
    if name == "indicator":
        return registry.indicator_label(value) if value else "as its severity says"
    if name == "pattern":
        return PATTERNS.get(value or SINGLE, _show(value))
    if name == "evidence_level":
        return EVIDENCE_LEVELS.get(value or EVIDENCE_DEFAULT, _show(value))
    if name == "review_by":
        try:
            day = review_by_date(value)
        except (TypeError, ValueError):
            return _show(value)
        return date_format(day, "DATE_FORMAT") if day else "a year after its last change"
    if name in ("message", "summary") and isinstance(value, str):
        return chips_from_placeholders(value, placeholder_labels(spec)) or "—"
    if name == "window_hours" and value not in (None, ""):
        hours = float(value)
        return _plural(int(hours // 24), "day") if hours % 24 == 0 else _plural(hours, "hour")
    if name == "cooldown_days":
        return _plural(value or 0, "day")
    if name == "display_days":
        return "until withdrawn" if value == 0 else _plural(value, "day")
    return _show(value)


def _events_words(spec: Mapping[str, Any]) -> str:
    labels = []
    for step in spec.get("steps") or []:
        fact_type = registry.fact_type(str(step.get("fact_type") or ""))
        labels.append(fact_type.label if fact_type else str(step.get("fact_type")))
    return ", then ".join(labels) or "—"


def _condition_text(spec: Mapping[str, Any], condition: Mapping[str, Any]) -> str:
    """A condition in words: "event 2: pain during the run is at least [Pain threshold]"."""
    steps = spec.get("steps") or []
    step = int(condition.get("step") or 1)
    fact_type = registry.fact_type(str(steps[step - 1].get("fact_type") or "")) if 0 < step <= len(steps) else None
    field = fact_type.field(str(condition.get("field") or "")) if fact_type else None
    what = field.in_words if field else str(condition.get("field") or "").replace("_", " ")
    operator = OPERATORS.get(str(condition.get("operator") or ""), (str(condition.get("operator") or ""),))[0]
    if condition.get("parameter"):
        target = f"[{placeholder_labels(spec).get(condition['parameter'], condition['parameter'])}]"
    else:
        value = condition.get("value")
        if field is not None and field.choices and value not in (None, ""):
            items = value if isinstance(value, (list, tuple)) else [value]
            target = ", ".join(field.choice_label(str(item)) for item in items)
        else:
            target = _show(value) if value not in (None, "") else ""
        if field is not None and field.unit and target:
            target += f" {field.unit}" if not field.unit.startswith("/") else field.unit
    negate = "not: " if condition.get("negate") else ""
    where = f"event {step}: " if len(steps) > 1 else ""
    return f"{where}{negate}{what} {operator} {target}".strip()


def spec_diff(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> RuleDiff:
    """What changed in one rule, in words a clinician reads (parameter values first)."""
    spec = after or before or {}
    if before is None:
        return RuleDiff(key=spec.get("key", "?"), name=spec.get("name", ""), action="added")
    if after is None:
        return RuleDiff(key=spec.get("key", "?"), name=spec.get("name", ""), action="removed")
    changes: list[tuple[str, str, str]] = []
    old_params = {p["name"]: p for p in before.get("parameters") or []}
    new_params = {p["name"]: p for p in after.get("parameters") or []}
    for name in sorted(old_params.keys() | new_params.keys()):
        old, new = old_params.get(name), new_params.get(name)
        label = (new or old).get("label") or name
        unit = (new or old).get("unit") or ""
        gap = "" if unit.startswith("/") else " "  # "5/10", "30 °C"
        old_v = f"{_show(old['value'])}{gap}{unit}".strip() if old else "—"
        new_v = f"{_show(new['value'])}{gap}{unit}".strip() if new else "—"
        if old_v != new_v or (old and new and old.get("kind") != new.get("kind")):
            changes.append((f"Parameter “{label}”", old_v, new_v))
    # A field an older version did not have yet reads as its default.
    before = {name: default for name, (_, default) in RULE_FIELDS.items()} | dict(before)
    after = {name: default for name, (_, default) in RULE_FIELDS.items()} | dict(after)
    for name in RULE_FIELDS:  # parameters, events and conditions are shown on their own
        if name != "key" and _show(before.get(name)) != _show(after.get(name)):
            changes.append((rule_field_label(name), _field_words(before, name), _field_words(after, name)))
    old_steps, new_steps = _events_words(before), _events_words(after)
    if old_steps != new_steps:
        changes.append(("Events", old_steps, new_steps))
    old_conditions = [_condition_text(before, c) for c in before.get("conditions") or []]
    new_conditions = [_condition_text(after, c) for c in after.get("conditions") or []]
    if old_conditions != new_conditions:
        removed = [c for c in old_conditions if c not in new_conditions]
        added = [c for c in new_conditions if c not in old_conditions]
        changes.append(("Conditions", "; ".join(removed) or "(order)", "; ".join(added) or "(order)"))
    return RuleDiff(
        key=spec.get("key", "?"), name=spec.get("name", ""), action="changed" if changes else "same", changes=changes
    )


def spec_without_evidence(spec: Mapping[str, Any]) -> dict[str, Any]:
    """``spec`` (normalized) with its evidence level and review date at their defaults."""
    return {**spec, "evidence_level": RULE_FIELDS["evidence_level"][1], "review_by": RULE_FIELDS["review_by"][1]}


def spec_comparable(spec: Mapping[str, Any]) -> dict[str, Any]:
    """``spec`` normalized for comparison; as it is when it does not validate (an old snapshot)."""
    try:
        return spec_normalize(spec)
    except Exception:
        return dict(spec)


def settings_diff(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[tuple[str, str, str]]:
    """The ruleset settings that differ from ``before`` to ``after``: (label, before, after)."""
    old, new = settings_normalize(before), settings_normalize(after)
    return [
        (label, _show(old[name]), _show(new[name]))
        for name, (label, _) in RULESET_SETTINGS.items()
        if old[name] != new[name]
    ]


def ruleset_diff(
    before: Sequence[Mapping[str, Any]],
    after: Sequence[Mapping[str, Any]],
    *,
    settings_before: Mapping[str, Any] | None = None,
    settings_after: Mapping[str, Any] | None = None,
) -> RulesetDiff:
    """Rules added, removed and changed from ``before`` to ``after`` (both lists of specs), and
    the ruleset settings that differ (defaults stand in for settings not given)."""
    old = {s["key"]: spec_comparable(s) for s in before}
    new = {s["key"]: spec_comparable(s) for s in after}
    diffs = []
    for key in sorted(old.keys() | new.keys()):
        if old.get(key) == new.get(key):
            continue
        diff = spec_diff(old.get(key), new.get(key))
        if diff.action != "same":
            diffs.append(diff)
    return RulesetDiff(rules=diffs, settings=settings_diff(settings_before, settings_after))
