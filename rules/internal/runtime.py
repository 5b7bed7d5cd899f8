"""Compiled rule versions loaded into durable_rules, and the matching pass over them.

``rules.evaluation`` is the public surface; this module holds the engine's moving parts:
the facts and matches it trades in, one loaded version per worker process (reloaded when
a newer version is published, found by a version stamp in the database), and the pass that
asserts facts and reads back every rule that fired.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rules.conf import rules_settings
from rules.internal.chains import best_chain, days_in_a_row
from rules.internal.compiler import STEP_SEPARATOR, CompiledRuleset, RuleMeta, ruleset_compile
from rules.internal.engine import DurableRuleset, EngineClosedError, single_binding
from rules.internal.facts import SCRATCH_SID, projector
from rules.internal.render import matched_text, render_message
from rules.registry import registry
from rules.spec import MATCHED_PLACEHOLDER


@dataclass(frozen=True)
class Fact:
    """A fact the domain sends for evaluation: an event with its fields and derived figures.

    ``group`` names the subject (a member) for the domain's own bookkeeping: patterns only
    ever chain the new fact with the history passed alongside it in the same evaluation.
    ``clears_referral`` marks a fact that ends the subject's referral (a physician's
    clearance), for the decision policy.
    """

    id: str
    type: str
    occurred_at: dt.datetime
    data: Mapping[str, Any]
    group: str = ""
    clears_referral: bool = False


class Match:
    """One rule that fired for the new fact.

    Light on purpose (it is made once per firing on the hot path): the rule's fields come
    from the compiled version, and the message is rendered the first time it is read.
    """

    __slots__ = (
        "_data",
        "_labels",
        "_message",
        "_rank",
        "_severity",
        "_sources",
        "_summary",
        "fact_ids",
        "meta",
        "version",
    )

    def __init__(
        self,
        meta: RuleMeta,
        version: int,
        fact_ids: tuple[str, ...],
        sources: tuple,
        labels: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.meta, self.version, self.fact_ids, self._sources = meta, version, fact_ids, sources
        self._labels, self._message, self._summary = labels, None, None
        self._severity: str | None = None
        self._rank: int | None = None
        self._data = sources[0] if sources else {}  # the judged fact's, for {matched}

    rule_key = property(lambda self: self.meta.key)
    rule_name = property(lambda self: self.meta.name)
    category = property(lambda self: self.meta.category)
    source_label = property(lambda self: self.meta.source_label)
    cooldown_days = property(lambda self: self.meta.cooldown_days)
    parameters = property(lambda self: self.meta.parameters)
    refers = property(lambda self: self.meta.refers)
    holds_back_lower = property(lambda self: self.meta.holds_back_lower)
    priority = property(lambda self: self.meta.priority)

    @property
    def severity(self) -> str:
        """The rule's severity, or the referral's where the rule follows a more urgent referral."""
        return self._severity if self._severity is not None else self.meta.severity

    @property
    def rank(self) -> int:
        """The severity's place, most urgent first (0)."""
        return self._rank if self._rank is not None else self.meta.rank

    @property
    def indicator(self) -> str:
        """How urgent the advice looks on a card: the rule's own indicator, else its severity's."""
        return self.meta.indicator or self.meta.indicators.get(self.severity, "")

    @property
    def order(self) -> tuple[int, int, str]:
        """Where the advice comes among one fact's: most urgent first, then priority, then key."""
        return (self.rank, self.meta.priority, self.meta.key)

    def escalated(self, *, severity: str, rank: int, values: Mapping[str, Any]) -> Match:
        """This match with another severity (a referral's) and more values for its message."""
        match = Match(self.meta, self.version, self.fact_ids, (values, *self._sources), self._labels)
        match._data = self._data
        if rank < self.meta.rank:
            match._severity, match._rank = severity, rank
        return match

    def _render(self, template: str, names: tuple[str, ...]) -> str:
        sources = self._sources
        if MATCHED_PLACEHOLDER in names:
            sources = ({MATCHED_PLACEHOLDER: matched_text(self.meta.matched, self._data, self._labels)}, *sources)
        return render_message(template, names, *sources, labels=self._labels)

    @property
    def message(self) -> str:
        if self._message is None:
            self._message = self._render(self.meta.message, self.meta.placeholders)
        return self._message

    @property
    def summary(self) -> str:
        """What to do, in at most 140 characters (the rule's summary; its name when it has none)."""
        if self._summary is None:
            text = (
                self._render(self.meta.summary, self.meta.summary_placeholders) if self.meta.summary else self.meta.name
            )
            self._summary = shorten(text, 140)
        return self._summary

    def __repr__(self) -> str:
        return f"Match({self.rule_key!r}, version={self.version}, fact_ids={self.fact_ids!r})"


def shorten(text: str, limit: int) -> str:
    """``text`` on one line, cut at a word to at most ``limit`` characters."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:.") + "…"


@dataclass(frozen=True)
class Evaluation:
    version: int
    matches: list[Match]


class LoadedRuleset:
    """A compiled rule version loaded into durable_rules."""

    def __init__(self, version: int, compiled: CompiledRuleset) -> None:
        self.version = version
        self.compiled = compiled
        self.single = DurableRuleset(compiled.single_json)
        self.pattern = DurableRuleset(compiled.pattern_json)
        self.checked_at = time.monotonic()
        self.single_projectors = {t: projector(f, compiled.date_fields) for t, f in compiled.single_fields.items()}
        self.pattern_projectors = {t: projector(f, compiled.date_fields) for t, f in compiled.pattern_fields.items()}
        # Matches are listed most severe first, then by the rules' priority and key.
        self.order = {key: (meta.rank, meta.priority, key) for key, meta in compiled.rules.items()}

    @property
    def broken(self) -> bool:
        return self.single.broken or self.pattern.broken

    def close(self) -> None:
        self.single.close()
        self.pattern.close()


_loaded: LoadedRuleset | None = None
_loaded_lock = threading.Lock()


def loaded_live(known_number: int | None = None) -> LoadedRuleset:
    """The live version, loaded; recompiled when a newer version was published.

    ``known_number``: the live version's number, just read by the caller in a query of its own
    (``version_live_number_expression``), so that it is not asked for again."""
    from rules.models import RulesetVersion
    from rules.selectors import version_live_number

    global _loaded
    loaded = _loaded
    wait = rules_settings.VERSION_CHECK_SECONDS
    if (
        known_number is None
        and loaded is not None
        and not loaded.broken
        and wait
        and time.monotonic() - loaded.checked_at < wait
    ):
        return loaded
    number = known_number if known_number is not None else version_live_number()
    with _loaded_lock:
        loaded = _loaded
        if loaded is not None and loaded.version == number and not loaded.broken:
            loaded.checked_at = time.monotonic()
            return loaded
        version = RulesetVersion.objects.filter(number=number).first() if number else None
        snapshot, settings = (version.snapshot, version.settings) if version else ([], {})
        fresh = LoadedRuleset(number, ruleset_compile(snapshot, catalog=registry, settings=settings))
        _loaded = fresh
        if loaded is not None:
            loaded.close()
        return fresh


def loaded_last() -> LoadedRuleset | None:
    """The version this process loaded last, without asking the database (None: none yet)."""
    return _loaded


def loaded_reset() -> None:
    """Forget this process's loaded version (tests; after a crash it rebuilds itself)."""
    global _loaded
    with _loaded_lock:
        if _loaded is not None:
            _loaded.close()
        _loaded = None


def evaluate_live(items: Sequence[tuple[Fact, Sequence[Fact]]]) -> tuple[LoadedRuleset, list[Evaluation]]:
    """``evaluate`` on the live version, retried when a publish replaced it under us."""
    for _ in range(5):
        loaded = loaded_live()
        try:
            return loaded, evaluate(loaded, items)
        except EngineClosedError:
            continue  # another thread published-and-reloaded under us: evaluate on the new version
    loaded = loaded_live()
    return loaded, evaluate(loaded, items)


def evaluate(engine: LoadedRuleset, items: Sequence[tuple[Fact, Sequence[Fact]]]) -> list[Evaluation]:
    """Every rule that fires for each (fact, history) pair, in one pass through the engine.

    ``history`` holds the subject's facts before ``fact``, oldest first: a pattern's match
    ends with the fact it is found for. Only matches that involve ``fact`` are returned,
    one per rule, most urgent first.
    """
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

    # Patterns: the engine checks every step's conditions on the new fact and the earlier
    # history inside the widest window, and the chains in time order are put together here
    # (see rules.internal.compiler for why durable_rules does not join them itself). A step's
    # conditions read only the fact itself, so each fact is asserted once, however many
    # evaluations' histories it is in (judging a timeline puts it in the history of every later
    # fact within the window).
    ordered: list[list[Fact]] = [[] for _ in items]
    if not engine.pattern.empty:
        documents = []
        window = compiled.history_window
        history_types = compiled.history_types
        projectors = engine.pattern_projectors
        asserted: dict[int, int] = {}  # id(fact) -> the number of its document
        stamps: list[float] = []  # document number -> the fact's time
        local_days: list[int] = []  # document number -> the fact's own local calendar day
        numbered: list[list[int]] = [[] for _ in items]  # evaluation -> its facts' document numbers
        for index, (fact, history) in enumerate(items):
            if fact.type not in history_types:
                continue
            relevant = [
                h
                for h in history
                if h.type in history_types
                and h.id != fact.id
                and h.occurred_at <= fact.occurred_at
                and fact.occurred_at - h.occurred_at <= window
            ]
            if not relevant:
                continue
            # The history's own order breaks ties between facts of one instant (the domain's order).
            facts = sorted(relevant, key=lambda f: f.occurred_at)
            facts.append(fact)
            ordered[index] = facts
            for item in facts:
                number = asserted.get(id(item))
                if number is None:
                    number = asserted[id(item)] = len(documents)
                    documents.append(
                        projectors[item.type]({"id": str(number), "sid": SCRATCH_SID, "type": item.type}, item.data)
                    )
                    stamps.append(item.occurred_at.timestamp())
                    local_days.append(item.occurred_at.date().toordinal())
                numbered[index].append(number)
        # document number -> the (pattern key, step) its fact satisfies
        satisfied: dict[int, list[tuple[str, int]]] = {}
        for message in engine.pattern.run(documents):
            name, engine_id = single_binding(message)
            key, step = name.rsplit(STEP_SEPARATOR, 1)
            satisfied.setdefault(int(engine_id), []).append((key, int(step)))
        for index, numbers in enumerate(numbered):
            # A match involves the new fact (the last): only its patterns can be chained.
            keys = {key for key, _ in satisfied.get(numbers[-1], ())} if numbers else set()
            if not keys:
                continue
            by_key: dict[str, dict[int, set[int]]] = {key: {} for key in keys}
            for position, number in enumerate(numbers):
                for key, step in satisfied.get(number, ()):
                    if key in by_key:
                        by_key[key].setdefault(step, set()).add(position)
            times = [stamps[number] for number in numbers]
            for key, by_step in by_key.items():
                if key in compiled.day_streaks:
                    days = [local_days[number] for number in numbers]
                    positions = days_in_a_row(compiled.day_streaks[key], by_step.get(1, set()), days, len(numbers) - 1)
                else:
                    steps, window_seconds = compiled.chains[key]
                    positions = best_chain(steps, by_step, times, window_seconds, len(numbers) - 1)
                if positions:
                    found[index][key] = positions

    rules, version, order, labels = compiled.rules, engine.version, engine.order, compiled.choice_labels
    evaluations = []
    for index, (fact, _) in enumerate(items):
        matches = []
        for rule_key in sorted(found[index], key=order.__getitem__):
            positions = found[index][rule_key]
            meta = rules[rule_key]
            if positions:
                matched = [ordered[index][p] for p in positions]
                others = sorted((f for f in matched if f is not fact), key=lambda f: f.occurred_at, reverse=True)
                sources = (
                    fact.data,
                    *[f.data for f in others],
                    meta.parameters,
                    meta.settings,
                    {"count": len(matched)},
                )
                matches.append(Match(meta, version, tuple(f.id for f in matched), sources, labels))
            else:
                single = (fact.data, meta.parameters, meta.settings, {"count": 1})
                matches.append(Match(meta, version, (fact.id,), single, labels))
        evaluations.append(Evaluation(version=version, matches=matches))
    return evaluations
