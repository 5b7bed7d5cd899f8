"""The public surface of the rules engine: evaluate facts, save rules, publish versions.

A domain app calls ``facts_evaluate`` (or ``facts_evaluate_many``) with the new fact and
the member's relevant history, and gets back every rule that fired. Evaluation always
uses the latest published version; each worker process notices a new version through a
version stamp in the database and compiles it on its next evaluation, with no restart.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max

from rules.compiler import STEP_SEPARATOR, CompiledRuleset, RuleMeta, ruleset_compile
from rules.conf import rules_settings
from rules.internal.chains import best_chain
from rules.internal.engine import DurableRuleset, EngineClosedError, single_binding
from rules.internal.facts import SCRATCH_SID, projector
from rules.internal.render import render_message
from rules.models import Rule, RuleChange, RuleCondition, RuleParameter, RulesetVersion, RuleStep
from rules.registry import registry
from rules.selectors import rule_spec, ruleset_draft_specs, version_live_number
from rules.spec import RuleValidationError, spec_normalize, spec_validate, value_text

MSG_CONFLICT = (
    "Someone else saved this rule while you were editing it (your copy: revision {mine}, saved: "
    "revision {theirs}). Reload the page to see their change, then make yours again."
)


class RuleConflictError(Exception):
    """A rule was saved by someone else since the editor loaded it."""


# --------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fact:
    """A fact the domain sends for evaluation: an event with its fields and derived figures.

    ``group`` names the subject (a member) for the domain's own bookkeeping: patterns only
    ever chain the new fact with the history passed alongside it in the same evaluation.
    """

    id: str
    type: str
    occurred_at: dt.datetime
    data: Mapping[str, Any]
    group: str = ""


class Match:
    """One rule that fired for the new fact.

    Light on purpose (it is made once per firing on the hot path): the rule's fields come
    from the compiled version, and the message is rendered the first time it is read.
    """

    __slots__ = ("_message", "_sources", "fact_ids", "meta", "version")

    def __init__(self, meta: RuleMeta, version: int, fact_ids: tuple[str, ...], sources: tuple) -> None:
        self.meta, self.version, self.fact_ids, self._sources, self._message = meta, version, fact_ids, sources, None

    rule_key = property(lambda self: self.meta.key)
    rule_name = property(lambda self: self.meta.name)
    category = property(lambda self: self.meta.category)
    severity = property(lambda self: self.meta.severity)
    source_label = property(lambda self: self.meta.source_label)
    cooldown_days = property(lambda self: self.meta.cooldown_days)
    parameters = property(lambda self: self.meta.parameters)

    @property
    def message(self) -> str:
        if self._message is None:
            self._message = render_message(self.meta.message, self.meta.placeholders, *self._sources)
        return self._message

    def __repr__(self) -> str:
        return f"Match({self.rule_key!r}, version={self.version}, fact_ids={self.fact_ids!r})"


@dataclass(frozen=True)
class Evaluation:
    version: int
    matches: list[Match]


@dataclass(frozen=True)
class LiveRuleset:
    """What a domain needs to know to collect history for the live version."""

    version: int
    history_window: dt.timedelta
    history_types: frozenset[str]


class _Engine:
    """A compiled rule version loaded into durable_rules (one per worker process)."""

    def __init__(self, version: int, compiled: CompiledRuleset) -> None:
        self.version = version
        self.compiled = compiled
        self.single = DurableRuleset(compiled.single_json)
        self.pattern = DurableRuleset(compiled.pattern_json)
        self.checked_at = time.monotonic()
        self.single_projectors = {t: projector(f, compiled.date_fields) for t, f in compiled.single_fields.items()}
        self.pattern_projectors = {t: projector(f, compiled.date_fields) for t, f in compiled.pattern_fields.items()}
        ranks = {choice.code: index for index, choice in enumerate(registry.severities())}
        # Matches are listed most severe first, then by rule key.
        self.order = {key: (ranks.get(meta.severity, len(ranks)), key) for key, meta in compiled.rules.items()}

    @property
    def broken(self) -> bool:
        return self.single.broken or self.pattern.broken

    def close(self) -> None:
        self.single.close()
        self.pattern.close()


_engine: _Engine | None = None
_engine_lock = threading.Lock()


def _engine_current() -> _Engine:
    """The engine of the live version, recompiled when a new version was published."""
    global _engine
    engine = _engine
    wait = rules_settings.VERSION_CHECK_SECONDS
    if engine is not None and not engine.broken and wait and time.monotonic() - engine.checked_at < wait:
        return engine
    number = version_live_number()
    with _engine_lock:
        engine = _engine
        if engine is not None and engine.version == number and not engine.broken:
            engine.checked_at = time.monotonic()
            return engine
        snapshot = RulesetVersion.objects.get(number=number).snapshot if number else []
        fresh = _Engine(number, ruleset_compile(snapshot))
        _engine = fresh
        if engine is not None:
            engine.close()
        return fresh


def ruleset_live() -> LiveRuleset:
    engine = _engine_current()
    return LiveRuleset(
        version=engine.version,
        history_window=engine.compiled.history_window,
        history_types=engine.compiled.history_types,
    )


def facts_evaluate(*, fact: Fact, history: Sequence[Fact] = ()) -> Evaluation:
    """Every rule of the live version that fires for ``fact`` given the member's ``history``.

    Only matches that involve ``fact`` are returned, one per rule, whatever order the facts
    arrived in: patterns use the facts' own ``occurred_at``.
    """
    return facts_evaluate_many(items=[(fact, history)])[0]


def facts_evaluate_many(*, items: Sequence[tuple[Fact, Sequence[Fact]]]) -> list[Evaluation]:
    """``facts_evaluate`` for many (fact, history) pairs in one pass through the engine."""
    for _ in range(5):
        try:
            return _evaluate(_engine_current(), items)
        except EngineClosedError:
            # Another thread published-and-reloaded under us: evaluate again on the new version.
            continue
    return _evaluate(_engine_current(), items)


class Evaluator:
    """Evaluates facts against a given set of rule specs (a draft, an import) instead of the live version.

    Used by "try it" and simulation. Call ``close()`` (or use it as a context manager)
    to free the engine.
    """

    def __init__(self, *, specs: Sequence[Mapping[str, Any]], version: int = 0) -> None:
        self._engine = _Engine(version, ruleset_compile(ruleset_check(specs)))

    @property
    def history_window(self) -> dt.timedelta:
        return self._engine.compiled.history_window

    @property
    def history_types(self) -> frozenset[str]:
        return self._engine.compiled.history_types

    def evaluate_many(self, items: Sequence[tuple[Fact, Sequence[Fact]]]) -> list[Evaluation]:
        return _evaluate(self._engine, items)

    def close(self) -> None:
        self._engine.close()

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _evaluate(engine: _Engine, items: Sequence[tuple[Fact, Sequence[Fact]]]) -> list[Evaluation]:
    compiled = engine.compiled
    found: list[dict[str, tuple[int, ...]]] = [{} for _ in items]

    # One-event rules never need history: only the new facts are asserted.
    documents = []
    projectors = engine.single_projectors
    for index, (fact, _) in enumerate(items):
        project = projectors.get(fact.type)
        if project is not None:
            documents.append(project({"id": str(index), "sid": SCRATCH_SID, "type": fact.type}, fact.data))
    for message in engine.single.run(documents):
        rule, engine_id = single_binding(message)
        found[int(engine_id)][rule] = ()

    # Patterns: every step's conditions are checked by the engine on the new fact and the
    # history inside the widest window; the chains in time order are put together here
    # (see rules.compiler for why durable_rules does not join them itself).
    ordered: list[list[Fact]] = [[] for _ in items]
    times: list[list[float]] = [[] for _ in items]
    if not engine.pattern.empty:
        documents = []
        window = compiled.history_window
        history_types = compiled.history_types
        projectors = engine.pattern_projectors
        new_positions = [-1] * len(items)
        for index, (fact, history) in enumerate(items):
            if fact.type not in history_types:
                continue
            relevant = [
                h
                for h in history
                if h.type in history_types and h.id != fact.id and abs(h.occurred_at - fact.occurred_at) <= window
            ]
            if not relevant:
                continue
            facts = sorted([fact, *relevant], key=lambda f: (f.occurred_at, f.id))
            ordered[index] = facts
            times[index] = [f.occurred_at.timestamp() for f in facts]
            for position, item in enumerate(facts):
                if item is fact:
                    new_positions[index] = position
                documents.append(
                    projectors[item.type](
                        {"id": f"{index}.{position}", "sid": SCRATCH_SID, "type": item.type}, item.data
                    )
                )
        # (evaluation, pattern key) -> step number -> positions of the facts that satisfy it
        hits: dict[tuple[int, str], dict[int, set[int]]] = {}
        for message in engine.pattern.run(documents):
            name, engine_id = single_binding(message)
            key, step = name.rsplit(STEP_SEPARATOR, 1)
            index, position = engine_id.split(".")
            hits.setdefault((int(index), key), {}).setdefault(int(step), set()).add(int(position))
        for (index, key), by_step in hits.items():
            steps, window_seconds = compiled.chains[key]
            positions = best_chain(steps, by_step, times[index], window_seconds, new_positions[index])
            if positions:
                found[index][key] = positions

    rules, version, order = compiled.rules, engine.version, engine.order
    evaluations = []
    for index, (fact, _) in enumerate(items):
        matches = []
        for rule_key in sorted(found[index], key=order.__getitem__):
            positions = found[index][rule_key]
            meta = rules[rule_key]
            if positions:
                matched = [ordered[index][p] for p in positions]
                others = sorted((f for f in matched if f is not fact), key=lambda f: f.occurred_at, reverse=True)
                sources = (fact.data, *[f.data for f in others], meta.parameters, {"count": len(matched)})
                matches.append(Match(meta, version, tuple(f.id for f in matched), sources))
            else:
                matches.append(Match(meta, version, (fact.id,), (fact.data, meta.parameters, {"count": 1})))
        evaluations.append(Evaluation(version=version, matches=matches))
    return evaluations


def engine_reset() -> None:
    """Forget this process's compiled engine (tests; after a crash the engine rebuilds itself)."""
    global _engine
    with _engine_lock:
        if _engine is not None:
            _engine.close()
        _engine = None


# --------------------------------------------------------------------------------------
# Authoring
# --------------------------------------------------------------------------------------
@transaction.atomic
def rule_save(
    *,
    spec: Mapping[str, Any],
    user: Any = None,
    rule: Rule | None = None,
    expected_revision: int | None = None,
) -> Rule:
    """Validate a rule spec and write it to the draft (create or replace), with an audit record.

    Raises ``RuleValidationError`` (field path -> messages) and nothing is written, or
    ``RuleConflictError`` when ``expected_revision`` is stale.
    """
    errors = spec_validate(spec)
    if rule is None:
        rule = Rule.objects.select_for_update().filter(key=spec.get("key")).first() or Rule()
    elif rule.pk:
        current = Rule.objects.select_for_update().filter(pk=rule.pk).values_list("revision", flat=True).first()
        if expected_revision is not None and current is not None and current != expected_revision:
            raise RuleConflictError(MSG_CONFLICT.format(mine=expected_revision, theirs=current))
    clash = Rule.objects.filter(key=spec.get("key")).exclude(pk=rule.pk).exists()
    if clash:
        errors.setdefault("key", []).append("Another rule already uses this key.")
    if errors:
        raise RuleValidationError(errors)
    normalized = spec_normalize(spec)
    before = rule_spec(rule) if rule.pk else None
    for name in (
        "key",
        "name",
        "description",
        "category",
        "severity",
        "message",
        "source_label",
        "cooldown_days",
        "enabled",
        "pattern",
        "count",
        "window_hours",
    ):
        setattr(rule, name, normalized[name])
    rule.updated_by = user if getattr(user, "pk", None) else None
    rule.revision = (rule.revision or 0) + 1 if before is not None else 1
    rule.save()
    rule.steps.all().delete()
    rule.conditions.all().delete()
    rule.parameters.all().delete()
    RuleStep.objects.bulk_create(
        RuleStep(rule=rule, position=index, fact_type=step["fact_type"])
        for index, step in enumerate(normalized["steps"], start=1)
    )
    RuleCondition.objects.bulk_create(
        RuleCondition(
            rule=rule,
            position=index,
            step=c["step"],
            group=c["group"],
            field=c["field"],
            operator=c["operator"],
            negate=c["negate"],
            value=value_text(c["value"]),
            parameter=c["parameter"] or "",
        )
        for index, c in enumerate(normalized["conditions"])
    )
    RuleParameter.objects.bulk_create(
        RuleParameter(
            rule=rule, name=p["name"], label=p["label"], kind=p["kind"], value=value_text(p["value"]), unit=p["unit"]
        )
        for p in normalized["parameters"]
    )
    after = rule_spec(Rule.objects.prefetch_related("steps", "conditions", "parameters").get(pk=rule.pk))
    if before != after:
        RuleChange.objects.create(
            rule_key=rule.key,
            action="changed" if before else "created",
            before=before,
            after=after,
            changed_by=rule.updated_by,
        )
    return rule


@transaction.atomic
def rule_delete(*, rule: Rule, user: Any = None) -> None:
    before = rule_spec(rule)
    RuleChange.objects.create(
        rule_key=rule.key,
        action="deleted",
        before=before,
        after=None,
        changed_by=user if getattr(user, "pk", None) else None,
    )
    rule.delete()


def rule_set_enabled(*, rule: Rule, enabled: bool, user: Any = None) -> Rule:
    spec = rule_spec(rule)
    spec["enabled"] = enabled
    return rule_save(spec=spec, rule=rule, user=user)


# --------------------------------------------------------------------------------------
# Publishing
# --------------------------------------------------------------------------------------
def ruleset_check(specs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validate, normalize and test-compile a whole ruleset; raise RuleValidationError if any rule is bad."""
    errors: dict[str, list[str]] = {}
    keys: set[str] = set()
    for spec in specs:
        for path, messages in spec_validate(spec).items():
            errors.setdefault(f"{spec.get('key') or '?'}: {path}", []).extend(messages)
        if spec.get("key") in keys:
            errors.setdefault(f"{spec.get('key')}: key", []).append("Two rules use this key.")
        keys.add(spec.get("key"))
    if errors:
        raise RuleValidationError(errors)
    normalized = sorted((spec_normalize(s) for s in specs), key=lambda s: s["key"])
    compiled = ruleset_compile(normalized)
    # Load it into the engine once, so a version that would not load is never published.
    for ruleset_json in (compiled.single_json, compiled.pattern_json):
        DurableRuleset(ruleset_json).close()
    return normalized


def ruleset_publish(
    *,
    user: Any = None,
    comment: str = "",
    specs: Sequence[Mapping[str, Any]] | None = None,
    rolled_back_from: int | None = None,
) -> RulesetVersion:
    """Freeze the draft (or ``specs``) into a new immutable version, which goes live at once."""
    snapshot = ruleset_check(ruleset_draft_specs() if specs is None else specs)
    for _ in range(5):
        try:
            with transaction.atomic():
                number = (RulesetVersion.objects.aggregate(top=Max("number"))["top"] or 0) + 1
                return RulesetVersion.objects.create(
                    number=number,
                    snapshot=snapshot,
                    comment=comment,
                    rolled_back_from=rolled_back_from,
                    created_by=user if getattr(user, "pk", None) else None,
                )
        except IntegrityError:  # two publishes raced for the same number: take the next one
            continue
    raise RuntimeError("Could not allocate a version number; try publishing again.")


@transaction.atomic
def ruleset_rollback(*, version: int, user: Any = None, comment: str = "") -> RulesetVersion:
    """Publish an earlier version again as a new version, and make the draft equal to it."""
    old = RulesetVersion.objects.get(number=version)
    draft_replace(specs=old.snapshot, user=user)
    return ruleset_publish(
        user=user, specs=old.snapshot, rolled_back_from=version, comment=comment or f"Rolled back to version {version}."
    )


@transaction.atomic
def draft_replace(*, specs: Sequence[Mapping[str, Any]], user: Any = None) -> None:
    """Make the draft exactly ``specs``: rules are created, changed or deleted to match."""
    keys = {spec["key"] for spec in specs}
    for rule in Rule.objects.exclude(key__in=keys).prefetch_related("steps", "conditions", "parameters"):
        rule_delete(rule=rule, user=user)
    for spec in specs:
        rule_save(spec=spec, user=user)


def ruleset_install_pack(specs: Sequence[Mapping[str, Any]], *, comment: str, user: Any = None) -> bool:
    """Add the pack's rules whose keys are new (never overwriting edits); publish if anything changed.

    Idempotent: a second call with the same pack changes nothing and returns False.
    """
    with transaction.atomic():
        existing = set(Rule.objects.values_list("key", flat=True))
        added = [spec for spec in specs if spec["key"] not in existing]
        for spec in added:
            rule_save(spec=spec, user=user)
    if added or not RulesetVersion.objects.exists():
        ruleset_publish(user=user, comment=comment)
        return True
    return False
