"""Evaluation: which rules fire for a fact, and which of them become advice.

The public surface of the engine for domain apps. Two steps, each with one home:

1. **Matching** (``facts_evaluate``, ``Evaluator``): every rule of a version whose conditions
   hold for a fact, given the subject's earlier facts (patterns across facts end with the
   fact they are found for).
2. **Deciding** (``decide``, ``timeline_judge``): the one decision policy that turns matches
   into advice, the same for production, re-evaluation, "try it" and simulation:

   - *cooldown*: a rule gives no new advice to a subject within its cooldown of the last
     advice it gave them (by the facts' ``occurred_at``);
   - *precedence*: a rule that holds back lower advice keeps less urgent matches of the same
     fact from being given;
   - *referral*: a rule that refers the subject (and whose advice is given) puts them under
     referral from that fact on; until a fact that clears the referral, only advice at least
     as urgent as the catalog's referral floor is given;
   - *the limit*: at most ``advice_limit`` pieces of advice per fact, most urgent first, then
     by the rules' priority (lower first), then by key.

   Advice held back for any reason starts no cooldown and no referral. ``timeline_judge``
   judges a subject's facts one at a time in time order, so the outcome is a function of the
   facts alone, whatever order they arrived in. What the policy reads besides the matches (the
   limit, the referral floor, the severities, the subject's words) is compiled into the ruleset
   it judges with (``Policy``), from the catalog the ruleset was compiled against.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from rules.internal.compiler import Policy, ruleset_compile
from rules.internal.engine import EngineClosedError
from rules.internal.runtime import (
    Evaluation,
    Fact,
    LoadedRuleset,
    Match,
    evaluate,
    evaluate_live,
    loaded_last,
    loaded_live,
    loaded_reset,
)
from rules.registry import UNDER_REFERRAL, Registry, registry
from rules.spec import ruleset_validate

__all__ = [
    "HELD_COOLDOWN",
    "HELD_LIMIT",
    "HELD_PRECEDENCE",
    "HELD_REFERRAL",
    "Decision",
    "DecisionState",
    "Evaluation",
    "Evaluator",
    "Fact",
    "Given",
    "HeldBack",
    "HistoryShort",
    "LiveRuleset",
    "Match",
    "Policy",
    "Referral",
    "decide",
    "engine_reset",
    "facts_evaluate",
    "facts_evaluate_many",
    "live_version_expression",
    "ruleset_live",
    "timeline_judge",
    "timelines_judge",
]

HELD_COOLDOWN = "cooldown"
HELD_PRECEDENCE = "precedence"
HELD_REFERRAL = "referral"
HELD_LIMIT = "limit"

# Why advice was held back, in a clinician's words (tests reuse these).
MSG_HELD_COOLDOWN = "Cooling down: this rule last gave advice on {date}; its cooldown is {days} day{plural}."
MSG_HELD_PRECEDENCE = "Held back by “{rule}”, which holds back less urgent advice on the same event."
MSG_HELD_REFERRAL = "The {subject} is under referral since {date} (“{rule}”): only the most urgent advice is given."
MSG_HELD_LIMIT = "Over the limit of {limit} piece{plural} of advice per event."


@dataclass(frozen=True)
class LiveRuleset:
    """What a domain needs to know to collect history for the live version."""

    version: int
    history_window: dt.timedelta
    history_types: frozenset[str]
    history_fields: frozenset[str] = frozenset()  # what patterns read of facts before the judged one
    policy: Policy | None = None


class HistoryShort(Exception):
    """The live version looks further back than the history the caller gave (a version with a
    wider window was published meanwhile): collect the history again and judge again."""


@dataclass(frozen=True)
class Referral:
    """A subject under referral: since when (in the fact's own offset, so that its date is the
    subject's local one), by which rule, on which fact, how urgent and what the advice said."""

    since: dt.datetime
    rule_key: str
    rule_name: str
    fact_id: str
    severity: str = ""
    summary: str = ""

    def dump(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "rule_key": self.rule_key,
            "rule_name": self.rule_name,
            "fact_id": self.fact_id,
            "severity": self.severity,
            "summary": self.summary,
        }

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> Referral:
        return cls(**{**data, "since": dt.datetime.fromisoformat(data["since"])})


@dataclass(frozen=True)
class Given:
    """What the policy remembers of a piece of advice given on a fact (for ``DecisionState.replay``)."""

    rule_key: str
    rule_name: str = ""
    severity: str = ""
    summary: str = ""
    started_referral: bool = False  # it put the subject under referral


@dataclass
class DecisionState:
    """What the policy remembers of a subject's earlier facts: the last advice of each rule
    (for cooldowns) and the referral in force."""

    last_given: dict[str, dt.datetime] = field(default_factory=dict)
    referral: Referral | None = None

    def copy(self) -> DecisionState:
        return replace(self, last_given=dict(self.last_given))

    def clear(self, policy: Policy) -> None:
        """A clearance: the referral ends, and so do the cooldowns of the rules that refer (the
        next fact that meets one refers again)."""
        self.referral = None
        for key in policy.referring:
            self.last_given.pop(key, None)

    def dump(self) -> dict[str, Any]:
        """The state as JSON (``load`` reads it back)."""
        return {
            "last_given": {key: moment_pack(at) for key, at in self.last_given.items()},
            "referral": self.referral.dump() if self.referral is not None else None,
        }

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> DecisionState:
        referral = data.get("referral")
        return cls(
            last_given={key: moment_unpack(at) for key, at in data["last_given"].items()},
            referral=Referral.load(referral) if referral else None,
        )

    def step(self, fact: Fact, given: Sequence[Given], *, policy: Policy) -> Referral | None:
        """Remember a fact already judged and what was given on it, as ``decide`` did; returns the
        referral in force when it was judged (after a clearance on it, before one it started)."""
        if fact.clears_referral:
            self.clear(policy)
        in_force = self.referral
        for advice in given:
            self.last_given[advice.rule_key] = fact.occurred_at
            if advice.started_referral:
                self.referral = Referral(
                    fact.occurred_at, advice.rule_key, advice.rule_name, fact.id, advice.severity, advice.summary
                )
        return in_force

    @classmethod
    def replay(cls, steps: Iterable[tuple[Fact, Sequence[Given]]], *, policy: Policy) -> DecisionState:
        """The state after facts already judged, from what was given on each (in time order):
        what ``decide`` remembered of them, without judging them again."""
        state = cls()
        for fact, given in steps:
            state.step(fact, given, policy=policy)
        return state


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_SECOND = dt.timedelta(seconds=1)


def moment_pack(moment: dt.datetime | None) -> int | str | None:
    """A moment as kept state stores it, exactly: whole seconds since 1970 (UTC) as an integer,
    one with a fraction of a second as ISO 8601 text."""
    if moment is None:
        return None
    if moment.microsecond:
        return moment.isoformat()
    return (moment - _EPOCH) // _SECOND


def moment_unpack(value: int | str | None) -> dt.datetime | None:
    """The moment ``moment_pack`` gave (ISO 8601 text too)."""
    if value is None:
        return None
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    return dt.datetime.fromtimestamp(value, dt.UTC)


@dataclass(frozen=True)
class HeldBack:
    """A match that fired but was not given, and why (one of the ``HELD_*`` codes)."""

    match: Match
    reason: str
    explanation: str
    by_rule: str = ""  # precedence: the rule that held it back; referral: the referring rule
    since: dt.datetime | None = None  # cooldown: the last advice; referral: since when


@dataclass(frozen=True)
class Decision:
    """The policy's answer for one fact: the advice given (most urgent first, then by priority
    and key), what was held back, and the referral in force once the fact was judged."""

    fact: Fact
    version: int
    given: list[Match]
    held_back: list[HeldBack]
    referral: Referral | None
    referral_started_by: str = ""  # the rule whose advice put the subject under referral on this fact

    def held(self, rule_key: str) -> HeldBack | None:
        return next((h for h in self.held_back if h.match.rule_key == rule_key), None)


def _plural(n: int) -> str:
    return "" if n == 1 else "s"


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def date_words(moment: dt.datetime) -> str:
    """A moment's date as people read it, in its own offset: "10 Nov 2026"."""
    return f"{moment.day} {_MONTHS[moment.month - 1]} {moment.year}"


_date = date_words


def _state_holds(groups: tuple, values: Mapping[str, Any]) -> bool:
    """Whether conditions on the policy's state hold: every group has an alternative that does."""
    for group in groups:
        for name, operator, value in group:
            actual = values.get(name)
            if (operator == "eq" and actual == value) or (operator == "ne" and actual != value):
                break
        else:
            return False
    return True


def _in_state(matches: Sequence[Match], referral: Referral | None, policy: Policy) -> list[Match]:
    """The matches whose conditions on the policy's state hold for the referral in force when the
    fact occurred, with that referral's values for their messages and, for a rule that follows the
    referral, its severity when more urgent; most urgent first, then by priority and key."""
    values = {UNDER_REFERRAL: referral is not None}
    kept = []
    escalated = False
    for match in matches:
        meta = match.meta
        if meta.state_groups and not _state_holds(meta.state_groups, values):
            continue
        if referral is not None and (meta.follows_referral or meta.uses_referral):
            severity = referral.severity if meta.follows_referral and referral.severity else meta.severity
            match = match.escalated(
                severity=severity,
                rank=policy.rank(severity),
                values={
                    "referral_since": date_words(referral.since),
                    "referral_rule": referral.rule_name,
                    "referral_advice": referral.summary,
                },
            )
            escalated = True
        kept.append(match)
    if escalated:
        kept.sort(key=lambda match: match.order)
    return kept


def decide(*, fact: Fact, matches: Sequence[Match], state: DecisionState, policy: Policy) -> Decision:
    """Apply the decision policy to one fact's ``matches`` and update ``state`` with what was given.

    ``matches`` come most urgent first, then by priority (as ``facts_evaluate`` lists them).
    """
    version = matches[0].version if matches else 0
    advice_limit = policy.advice_limit
    if fact.clears_referral:
        state.clear(policy)
    matches = _in_state(matches, state.referral, policy)
    held: list[HeldBack] = []

    candidates: list[Match] = []
    for match in matches:
        last = state.last_given.get(match.rule_key)
        days = match.cooldown_days
        if days and last is not None and fact.occurred_at - last < dt.timedelta(days=days):
            # The date in the judged fact's offset: what was given is remembered as an instant.
            when = _date(last.astimezone(fact.occurred_at.tzinfo))
            explanation = MSG_HELD_COOLDOWN.format(date=when, days=days, plural=_plural(days))
            held.append(HeldBack(match, HELD_COOLDOWN, explanation, since=last))
        else:
            candidates.append(match)

    holder = min((m for m in candidates if m.holds_back_lower), key=lambda m: m.rank, default=None)
    if holder is not None:
        kept = []
        for match in candidates:
            if match.rank > holder.rank:
                explanation = MSG_HELD_PRECEDENCE.format(rule=holder.rule_name)
                held.append(HeldBack(match, HELD_PRECEDENCE, explanation, by_rule=holder.rule_key))
            else:
                kept.append(match)
        candidates = kept

    floor = policy.referral_floor
    referral = state.referral
    # Only advice that is given starts a referral: a referring rule at or above the floor that is
    # within the limit once the less urgent matches are held back. A more urgent referral takes
    # the place of the one in force (an emergency after a referral "within days").
    urgent = [m for m in candidates if m.rank <= floor][:advice_limit]
    starter = next(
        (m for m in urgent if m.refers and (referral is None or m.rank < policy.rank(referral.severity))), None
    )
    if starter is not None:
        referral = Referral(
            fact.occurred_at, starter.rule_key, starter.rule_name, fact.id, starter.severity, starter.summary
        )
    if referral is not None:
        kept = []
        for match in candidates:
            if match.rank > floor:
                explanation = MSG_HELD_REFERRAL.format(
                    subject=policy.subject, date=_date(referral.since), rule=referral.rule_name
                )
                held.append(
                    HeldBack(match, HELD_REFERRAL, explanation, by_rule=referral.rule_key, since=referral.since)
                )
            else:
                kept.append(match)
        candidates = kept

    given = candidates[:advice_limit]
    for match in candidates[advice_limit:]:
        explanation = MSG_HELD_LIMIT.format(limit=advice_limit, plural=_plural(advice_limit))
        held.append(HeldBack(match, HELD_LIMIT, explanation))

    for match in given:
        state.last_given[match.rule_key] = fact.occurred_at
    started = ""
    if starter is not None:  # given: it is among the first `advice_limit` of what was kept
        state.referral = referral
        started = starter.rule_key
    return Decision(
        fact=fact, version=version, given=given, held_back=held, referral=state.referral, referral_started_by=started
    )


def _timeline_items(loaded: LoadedRuleset, facts: Sequence[Fact], start: int) -> list[tuple[Fact, list[Fact]]]:
    """Each fact from ``start`` on with the earlier facts a pattern could chain it with."""
    window = loaded.compiled.history_window
    types = loaded.compiled.history_types
    items = []
    for index in range(start, len(facts)):
        fact = facts[index]
        history: list[Fact] = []
        if window and fact.type in types:
            earlier = index - 1
            while earlier >= 0 and fact.occurred_at - facts[earlier].occurred_at <= window:
                if facts[earlier].type in types:
                    history.append(facts[earlier])
                earlier -= 1
            history.reverse()
        items.append((fact, history))
    return items


def _judge(
    loaded: LoadedRuleset, evaluations: Sequence[Evaluation], facts: Sequence[Fact], start: int, state: DecisionState
) -> list[Decision]:
    policy = loaded.compiled.policy
    return [
        replace(decide(fact=fact, matches=evaluation.matches, state=state, policy=policy), version=loaded.version)
        for fact, evaluation in zip(facts[start:], evaluations, strict=True)
    ]


def timeline_judge(
    *,
    facts: Sequence[Fact],
    start: int = 0,
    state: DecisionState | None = None,
    evaluator: Evaluator | None = None,
    live_version: int | None = None,
) -> list[Decision]:
    """Judge ``facts[start:]`` one at a time in order, on the live version (or ``evaluator``'s).

    ``facts`` are one subject's facts in time order (ties broken the same way every time);
    the facts before ``start`` are history, already judged, and ``state`` is what the policy
    remembers of them (``DecisionState()`` when judging from the first fact). Returns one
    decision per judged fact.
    """
    state = state if state is not None else DecisionState()
    if evaluator is None:
        return timelines_judge([(facts, start, state)], live_version=live_version)[0]
    loaded = evaluator.loaded
    return _judge(loaded, evaluate(loaded, _timeline_items(loaded, facts, start)), facts, start, state)


def timelines_judge(
    timelines: Sequence[tuple[Sequence[Fact], int, DecisionState]],
    *,
    live_version: int | None = None,
    history_covered: dt.timedelta | None = None,
    history_omits: frozenset[str] = frozenset(),
) -> list[list[Decision]]:
    """``timeline_judge`` for several subjects at once, on the live version: one look at the live
    version and one batched engine call for all of them. Each entry is (facts, start, state), as
    ``timeline_judge`` takes them; ``state`` is updated in place. Returns the decisions per entry.

    ``live_version``: the live version's number, when the caller read it with its own query
    (``live_version_expression``); otherwise it is asked for.

    ``history_covered``: the facts before ``start`` may leave out the subject's older facts, as
    long as every fact within this much of ``facts[start]`` is there (see ``ruleset_live``'s
    ``history_window``), and the facts before ``start`` may leave out the fields
    ``history_omits`` as long as no pattern reads them (``history_fields``). Raises
    ``HistoryShort`` when the version judging looks further back or reads one of those."""
    if not timelines:
        return []
    for attempt in range(5):
        loaded = loaded_live(live_version if attempt == 0 else None)
        if history_covered is not None and loaded.compiled.history_window > history_covered:
            raise HistoryShort(f"version {loaded.version} looks back {loaded.compiled.history_window}")
        if history_omits & loaded.compiled.history_fields:
            raise HistoryShort(
                f"version {loaded.version} reads {sorted(history_omits & loaded.compiled.history_fields)}"
            )
        items = [item for facts, start, _state in timelines for item in _timeline_items(loaded, facts, start)]
        try:
            evaluations = evaluate(loaded, items)
            break
        except EngineClosedError:
            if attempt == 4:
                raise  # published-and-reloaded under us five times in a row
    judged, offset = [], 0
    for facts, start, state in timelines:
        count = len(facts) - start
        judged.append(_judge(loaded, evaluations[offset : offset + count], facts, start, state))
        offset += count
    return judged


def live_version_expression() -> Any:
    """The live version's number as a query expression (NULL: none), to read it in the same
    round trip as a domain's own query and pass it to ``timelines_judge``."""
    from rules.selectors import version_live_number_expression

    return version_live_number_expression()


def ruleset_loaded() -> LiveRuleset | None:
    """``ruleset_live`` of the version this process loaded last, without a query: what the live
    version most likely is, to shape a read before the live version's number comes with it
    (None: none loaded yet)."""
    loaded = loaded_last()
    return _live(loaded) if loaded is not None else None


def ruleset_live(live_version: int | None = None) -> LiveRuleset:
    """The live version's number and how far back its patterns look (``live_version``: its
    number as the caller read it, which saves a query)."""
    return _live(loaded_live(live_version))


def _live(loaded: LoadedRuleset) -> LiveRuleset:
    return LiveRuleset(
        version=loaded.version,
        history_window=loaded.compiled.history_window,
        history_types=loaded.compiled.history_types,
        history_fields=loaded.compiled.history_fields,
        policy=loaded.compiled.policy,
    )


def facts_evaluate(*, fact: Fact, history: Sequence[Fact] = ()) -> Evaluation:
    """Every rule of the live version that fires for ``fact`` given the subject's earlier ``history``.

    Only matches that involve ``fact`` are returned, one per rule, most urgent first.
    """
    return facts_evaluate_many(items=[(fact, history)])[0]


def facts_evaluate_many(*, items: Sequence[tuple[Fact, Sequence[Fact]]]) -> list[Evaluation]:
    """``facts_evaluate`` for many (fact, history) pairs in one pass through the engine."""
    return evaluate_live(items)[1]


class Evaluator:
    """Matches and judges facts against given rule specs (a draft, an import) instead of the live version.

    Used by "try it", simulation and the test evaluation before a publish. The specs are validated
    (unless ``checked``) and compiled against ``catalog``, the registry unless given; they need not
    hold the safety-critical rules, which a ruleset must hold to be published, not to be judged
    (one rule tried on its own, a version published before a rule became safety-critical). Call
    ``close()`` (or use it as a context manager) to free the engine.
    """

    def __init__(
        self,
        *,
        specs: Sequence[Mapping[str, Any]],
        version: int = 0,
        settings: Mapping[str, Any] | None = None,
        catalog: Registry | None = None,
        checked: bool = False,
    ) -> None:
        catalog = catalog if catalog is not None else registry
        normalized = (
            list(specs) if checked else ruleset_validate(specs, settings=settings, safety=False, catalog=catalog)
        )
        compiled = ruleset_compile(normalized, catalog=catalog, settings=settings)
        self.loaded = LoadedRuleset(version, compiled)

    @property
    def version(self) -> int:
        return self.loaded.version

    @property
    def history_window(self) -> dt.timedelta:
        return self.loaded.compiled.history_window

    @property
    def history_types(self) -> frozenset[str]:
        return self.loaded.compiled.history_types

    def evaluate_many(self, items: Sequence[tuple[Fact, Sequence[Fact]]]) -> list[Evaluation]:
        return evaluate(self.loaded, items)

    def judge(self, facts: Sequence[Fact], *, start: int = 0, state: DecisionState | None = None) -> list[Decision]:
        return timeline_judge(facts=facts, start=start, state=state, evaluator=self)

    def close(self) -> None:
        self.loaded.close()

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def engine_reset() -> None:
    """Forget this process's compiled engine (tests; after a crash the engine rebuilds itself)."""
    loaded_reset()
