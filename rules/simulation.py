"""Try it and simulate: what the draft would do, compared with the live version.

Both judge exactly as production does (``rules.evaluation.timeline_judge``): each subject's
facts one at a time in time order, with the same cooldowns, precedence, referral and limit
per event. ``rule_try`` judges one typed-in event after a real subject's history and says
what was given, what was held back and why. ``ruleset_simulate`` judges every subject with
facts in the last N days from their first fact, through the draft and through the live
version, and counts per rule the advice that would appear, disappear or change: what
publishing the draft and re-evaluating would do. Facts are read from the database first;
the engine work that follows touches no database.

Every simulation is kept as a job (``rules.models.Job``; a long one runs on the task queue,
``simulation_start``), with each event that got advice from either version and both versions'
advice for it, so that a page can show the rows behind every figure, and with the burden each
version puts on the subjects (``Burden``): advice per subject and week, the share of events with
any advice, repeats, the mix by severity and the subjects who get the most urgent cards.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from django.utils import timezone

from rules import jobs
from rules.conf import rules_settings
from rules.evaluation import (
    HELD_COOLDOWN,
    HELD_LIMIT,
    HELD_PRECEDENCE,
    HELD_REFERRAL,
    Decision,
    Evaluator,
    Fact,
    HeldBack,
    Match,
)
from rules.internal.render import display_value, moment_words
from rules.models import Job
from rules.registry import FactSource, registry
from rules.selectors import (
    ruleset_draft_fingerprint,
    ruleset_draft_settings,
    ruleset_draft_specs,
    ruleset_fingerprint,
    version_live,
)
from rules.services import ruleset_check
from rules.spec import settings_normalize

MSG_NO_FACT_SOURCE = "No domain has registered a source of stored events, so there is nothing to try or simulate."
EXAMPLES_PER_RULE = 5
# Why advice was held back, as a clinician reads it in a simulation's counts.
HELD_LABELS = {
    HELD_COOLDOWN: "cooling down",
    HELD_PRECEDENCE: "held back by a more urgent rule",
    HELD_REFERRAL: "under referral",
    HELD_LIMIT: "over the limit per event",
}
# Simulations of more stored facts than this run on the task queue, with a progress bar.
BACKGROUND_ABOVE = 20_000


class SimulationUnavailable(Exception):
    pass


def _source():
    source = registry.fact_source()
    if source is None:
        raise SimulationUnavailable(MSG_NO_FACT_SOURCE)
    return source


def live_specs() -> tuple[int, list[dict[str, Any]]]:
    live = version_live()
    return (live.number, list(live.snapshot)) if live else (0, [])


def live_settings() -> dict[str, Any]:
    live = version_live()
    return settings_normalize(live.settings if live else None)


# -- try it ---------------------------------------------------------------------------------
@dataclass
class TryResult:
    fact: Fact
    history: list[Fact]
    draft: list[Match]  # advice the draft gives
    live: list[Match]  # advice the live version gives
    live_version: int
    bound: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    draft_held: list[HeldBack] = field(default_factory=list)
    live_held: list[HeldBack] = field(default_factory=list)
    # rule key -> the events a pattern matched: (date, what, values)
    matched: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    referral_before: Any = None


def _judge_last(evaluator: Evaluator, fact: Fact, history: Sequence[Fact]) -> Decision:
    return evaluator.judge([*history, fact])[-1]


def rule_try(
    *,
    fact_type: str,
    data: Mapping[str, Any],
    occurred_at: dt.datetime,
    subject: str | None,
    specs: Sequence[Mapping[str, Any]] | None = None,
    replacing: str | None = None,
) -> TryResult:
    """What the draft (default: the whole draft; or ``specs``) and the live version would give
    for this event after the subject's history: the advice, and what was held back and why.
    ``replacing``: the stored fact this event stands for, left out of the history."""
    extra = {"replacing": replacing} if replacing else {}
    fact, history = _source().enrich(
        fact_type=fact_type, data=dict(data), occurred_at=occurred_at, subject=subject or None, **extra
    )
    version, live = live_specs()
    draft_specs = list(ruleset_draft_specs() if specs is None else specs)
    with Evaluator(specs=draft_specs, settings=ruleset_draft_settings()) as draft_evaluator:
        draft = _judge_last(draft_evaluator, fact, history)
    with Evaluator(specs=live, version=version, settings=live_settings()) as live_evaluator:
        live_decision = _judge_last(live_evaluator, fact, history)
    live_given, live_held = live_decision.given, live_decision.held_back
    if specs is not None:
        keys = {s["key"] for s in specs}
        live_given = [m for m in live_given if m.rule_key in keys]
        live_held = [h for h in live_held if h.match.rule_key in keys]
    by_key = {spec["key"]: spec for spec in draft_specs}
    facts = [fact, *history]
    fired = [*draft.given, *(h.match for h in draft.held_back)]
    bound = {m.rule_key: match_bound_values(m, by_key.get(m.rule_key), facts) for m in fired}
    matched = {m.rule_key: matched_events(m, facts) for m in fired if len(m.fact_ids) > 1}
    return TryResult(
        fact=fact,
        history=list(history),
        draft=draft.given,
        live=live_given,
        live_version=version,
        bound=bound,
        draft_held=draft.held_back,
        live_held=live_held,
        matched=matched,
    )


def matched_events(match: Match, facts: Sequence[Fact]) -> list[tuple[str, str, str]]:
    """The events a pattern matched, oldest first: (date, event type, the values its conditions read)."""
    by_id = {f.id: f for f in facts}
    rows = []
    for fact_id in match.fact_ids:
        fact = by_id.get(fact_id)
        if fact is None:
            continue
        fact_type = registry.fact_type(fact.type)
        label = fact_type.label if fact_type else fact.type
        shown = []
        for name, value in fact.data.items():
            spec = fact_type.field(name) if fact_type else None
            if spec is not None and not spec.derived and value is not None:
                shown.append(f"{spec.label.lower()} {display_value(value)}{(' ' + spec.unit) if spec.unit else ''}")
        rows.append((moment_words(fact.occurred_at), label, ", ".join(shown)))
    return rows


def match_bound_values(match: Match, spec: Mapping[str, Any] | None, facts: Sequence[Fact]) -> list[tuple[str, str]]:
    """The values a match compared: each condition's field in its matched event, then the parameters."""
    if spec is None:
        return []
    by_id = {f.id: f for f in facts}
    matched = [by_id[i] for i in match.fact_ids if i in by_id]
    steps = spec.get("steps") or []
    values: list[tuple[str, str]] = []
    seen = set()
    for condition in spec.get("conditions") or []:
        step = int(condition.get("step") or 1)
        # A count pattern matches several facts of its one step: show the newest.
        fact = (
            matched[step - 1] if spec.get("pattern") == "sequence" and step <= len(matched) else (matched or [None])[-1]
        )
        if fact is None or (condition["field"], fact.id) in seen:
            continue
        seen.add((condition["field"], fact.id))
        fact_type = registry.fact_type(steps[step - 1]["fact_type"]) if step <= len(steps) else None
        field_spec = fact_type.field(condition["field"]) if fact_type else None
        label = field_spec.label if field_spec else condition["field"]
        value = fact.data.get(condition["field"])
        if value is None:
            shown = "not recorded"
        elif field_spec is not None and field_spec.choices and isinstance(value, str):
            shown = field_spec.choice_label(value)
        else:
            shown = display_value(value) + (f" {field_spec.unit}" if field_spec and field_spec.unit else "")
        values.append((label, shown))
    for parameter in spec.get("parameters") or []:
        values.append(
            (
                f"parameter {parameter.get('label') or parameter['name']}",
                f"{display_value(match.parameters.get(parameter['name']))} {parameter.get('unit') or ''}".strip(),
            )
        )
    return values


# -- simulation -----------------------------------------------------------------------------
@dataclass
class RuleImpact:
    key: str
    name: str
    live: int = 0
    draft: int = 0
    appear: int = 0
    disappear: int = 0
    change: int = 0
    examples: dict[str, list[str]] = field(default_factory=lambda: {"appear": [], "disappear": [], "change": []})
    in_draft: bool = True
    in_live: bool = True
    # Draft matches that were held back, by reason (cooldown, precedence, referral, limit).
    held: dict[str, int] = field(default_factory=dict)
    # example label -> the subject it is about (for a link to the domain's page about them)
    example_subjects: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.appear or self.disappear or self.change)

    @property
    def held_reasons(self) -> list[tuple[str, int]]:
        """(why, how many) of the draft's held-back advice, in the order the policy applies them."""
        return [(label, self.held[reason]) for reason, label in HELD_LABELS.items() if self.held.get(reason)]

    def example(self, kind: str, label: str, subject: str = "") -> None:
        examples = self.examples[kind]
        if label not in examples and len(examples) < EXAMPLES_PER_RULE:
            examples.append(label)
            if subject:
                self.example_subjects[label] = subject

    @property
    def example_links(self) -> dict[str, list[tuple[str, str | None]]]:
        """The examples of each kind as (label, address of the subject's page or None)."""
        source = registry.fact_source()

        def url(label: str) -> str | None:
            subject = self.example_subjects.get(label)
            return source.subject_url(subject) if source is not None and subject else None

        return {kind: [(label, url(label)) for label in labels] for kind, labels in self.examples.items()}


@dataclass(frozen=True, slots=True)
class Advised:
    """One piece of advice a version gave on a simulated event, as a page shows it."""

    rule_key: str
    rule_name: str
    severity: str  # code
    indicator: str
    summary: str
    message: str

    @classmethod
    def of(cls, match: Match) -> Advised:
        return cls(match.rule_key, match.rule_name, match.severity, match.indicator, match.summary, match.message)


APPEAR, DISAPPEAR, CHANGE = "appear", "disappear", "change"
KINDS = (APPEAR, DISAPPEAR, CHANGE)
# What a row of a simulation shows, in a clinician's words: the advice of the live version and the draft.
KIND_LABELS = {
    APPEAR: "would appear",
    DISAPPEAR: "would disappear",
    CHANGE: "would change",
    "live": "given by the live version",
    "draft": "given by the draft",
}


@dataclass(slots=True)
class SimulatedEvent:
    """One counted fact of a simulation: whose, when (in its own offset), in words, and the advice
    each version gives on it, most urgent first."""

    fact_id: str
    subject: str
    subject_label: str
    occurred_at: dt.datetime
    words: str
    live: list[Advised] = field(default_factory=list)
    draft: list[Advised] = field(default_factory=list)

    def kinds(self) -> dict[str, str]:
        """Rule key -> appear, disappear or change, for the rules whose advice differs."""
        live = {a.rule_key: a for a in self.live}
        draft = {a.rule_key: a for a in self.draft}
        found = {}
        for key in live.keys() | draft.keys():
            if key not in live:
                found[key] = APPEAR
            elif key not in draft:
                found[key] = DISAPPEAR
            elif (live[key].message, live[key].severity) != (draft[key].message, draft[key].severity):
                found[key] = CHANGE
        return found


@dataclass
class SimulationInput:
    since: dt.datetime
    days: int
    live_version: int
    live_specs: list[dict[str, Any]]
    draft_specs: list[dict[str, Any]]
    # a list, or an iterator read as the run goes (then ``total`` says how many facts it counts)
    timelines: Iterable[tuple[list[Fact], dict[str, str]]]
    live_settings: dict[str, Any] = field(default_factory=dict)
    draft_settings: dict[str, Any] = field(default_factory=dict)
    total: int | None = None

    @property
    def facts(self) -> list[Fact]:
        """The facts whose advice is counted (those since ``since``)."""
        return [fact for facts, _ in self.timelines for fact in facts if fact.occurred_at >= self.since]


@dataclass
class SimulationResult:
    since: dt.datetime
    days: int
    events: int
    subjects: int
    seconds: float
    live_version: int
    rules: list[RuleImpact]
    # fact id -> the rule keys the draft would give advice for (the prediction, exactly)
    predicted: dict[str, list[str]] = field(default_factory=dict)
    # The counted events in judging order (with keep_all, those without advice from either version too).
    events_judged: list[SimulatedEvent] = field(default_factory=list)
    burden: Burden | None = None
    fingerprint: str = ""  # of the draft simulated (rules.selectors.ruleset_draft_fingerprint)
    tallies: dict[str, BurdenTally] = field(default_factory=dict)  # what the burden is made of

    @property
    def totals(self) -> dict[str, int]:
        return {
            name: sum(getattr(r, name) for r in self.rules)
            for name in ("live", "draft", "appear", "disappear", "change")
        }

    @property
    def changed_rules(self) -> list[RuleImpact]:
        return [r for r in self.rules if r.changed]

    @property
    def rules_changed_first(self) -> list[RuleImpact]:
        """The rules whose advice changes (most changes first), then the others by name."""
        changed = sorted(self.changed_rules, key=lambda r: (-(r.appear + r.disappear + r.change), r.name))
        return changed + sorted((r for r in self.rules if not r.changed), key=lambda r: r.name)

    def summary(self) -> dict[str, Any]:
        """What an approval freezes of the simulation: its period, size, totals and each changed rule."""
        return {
            "days": self.days,
            "since": self.since.isoformat(),
            "events": self.events,
            "subjects": self.subjects,
            "live_version": self.live_version,
            "totals": self.totals,
            "rules": [
                {
                    "key": r.key,
                    "name": r.name,
                    **{name: getattr(r, name) for name in ("live", "draft", "appear", "disappear", "change")},
                }
                for r in self.rules_changed_first
                if r.changed
            ],
        }


# -- the burden on the subjects ---------------------------------------------------------------
VERSIONS = ("live", "draft")
REPEAT_DAYS = 7  # the same rule to the same subject within this many days is a repeat

MSG_BURDEN_RISE = (
    "Advice per {subject} and week rises by {rise} % with the draft (from {live} to {draft} on average), more than "
    "the {limit} % a draft may add without a written reason."
)
MSG_BURDEN_URGENT = (
    "{share} % of {subjects} would get a “{indicator}” card with the draft, more than the {limit} % a draft may "
    "reach without a written reason."
)


@dataclass
class BurdenFigures:
    """The advice one version gives the simulated subjects, as they feel it."""

    events: int = 0
    subjects: int = 0
    subject_weeks: int = 0  # (subject, week) pairs with at least one event
    advice: int = 0
    per_week_mean: float = 0.0
    per_week_median: float = 0.0
    per_week_busiest_tenth: float = 0.0  # the advice the busiest tenth of subject-weeks get, at least
    events_with_advice: int = 0
    repeats: int = 0  # advice of a rule to a subject it gave them advice within REPEAT_DAYS before
    by_severity: dict[str, int] = field(default_factory=dict)  # code -> pieces of advice
    most_urgent_subjects: int = 0  # subjects with at least one card of the most urgent indicator

    @property
    def events_with_advice_pct(self) -> float:
        return 100 * self.events_with_advice / self.events if self.events else 0.0

    @property
    def most_urgent_pct(self) -> float:
        return 100 * self.most_urgent_subjects / self.subjects if self.subjects else 0.0

    @property
    def repeats_pct(self) -> float:
        return 100 * self.repeats / self.advice if self.advice else 0.0


@dataclass
class Burden:
    """The burden of the live version and of the draft, side by side, and why it is flagged."""

    live: BurdenFigures
    draft: BurdenFigures
    most_urgent_indicator: str = ""  # its label, e.g. "Critical"
    flags: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return bool(self.flags)

    @property
    def rise_pct(self) -> float | None:
        """How much advice per subject-week rises with the draft, in percent (None: none live)."""
        if not self.live.per_week_mean:
            return None
        return 100 * (self.draft.per_week_mean - self.live.per_week_mean) / self.live.per_week_mean

    def severity_rows(self) -> list[tuple[str, int, int]]:
        """(severity in words, live, draft), most urgent first, the severities either gives."""
        codes = [c.code for c in registry.severities()]
        given = set(self.live.by_severity) | set(self.draft.by_severity)
        ordered = [code for code in codes if code in given] + sorted(given - set(codes))
        return [
            (registry.severity_label(code), self.live.by_severity.get(code, 0), self.draft.by_severity.get(code, 0))
            for code in ordered
        ]


@dataclass
class BurdenTally:
    """What one version's burden figures are made of, in sums: simulations of disjoint sets of
    subjects (the parts of one spread over workers) add up to the whole's tally."""

    events: int = 0
    subjects: int = 0
    advice: int = 0
    events_with_advice: int = 0
    repeats: int = 0
    most_urgent_subjects: int = 0
    by_severity: dict[str, int] = field(default_factory=dict)
    # pieces of advice in one subject-week -> how many subject-weeks got that many
    per_week: dict[int, int] = field(default_factory=dict)

    def add(self, other: BurdenTally) -> None:
        for name in ("events", "subjects", "advice", "events_with_advice", "repeats", "most_urgent_subjects"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for into, more in ((self.by_severity, other.by_severity), (self.per_week, other.per_week)):
            for key, count in more.items():
                into[key] = into.get(key, 0) + count

    def figures(self) -> BurdenFigures:
        weeks = sum(self.per_week.values())
        ordered = sorted(self.per_week.items())

        def nth(index: int) -> int:  # the index-th smallest subject-week count
            for value, times in ordered:
                if index < times:
                    return value
                index -= times
            raise IndexError(index)

        middle = weeks // 2
        median = float(nth(middle)) if weeks % 2 else (nth(middle - 1) + nth(middle)) / 2 if weeks else 0.0
        return BurdenFigures(
            events=self.events,
            subjects=self.subjects,
            subject_weeks=weeks,
            advice=self.advice,
            per_week_mean=self.advice / weeks if weeks else 0.0,
            per_week_median=median,
            per_week_busiest_tenth=float(nth(max(math.ceil(0.9 * weeks) - 1, 0))) if weeks else 0.0,
            events_with_advice=self.events_with_advice,
            repeats=self.repeats,
            by_severity=dict(self.by_severity),
            most_urgent_subjects=self.most_urgent_subjects,
        )

    def dump(self) -> dict[str, Any]:
        data = asdict(self)
        data["per_week"] = sorted(self.per_week.items())  # JSON keys are text
        return data

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> BurdenTally:
        return cls(**{**data, "per_week": {int(count): times for count, times in data["per_week"]}})


def burden_tally(
    events: Iterable[SimulatedEvent], *, version: str, since: dt.datetime, most_urgent: str = ""
) -> BurdenTally:
    """The tally of ``version`` ("live" or "draft") over simulated events (each subject's in
    judging order): weeks are the 7-day spans from ``since``'s date, on the events' own local days."""
    tally = BurdenTally()
    subjects: set[str] = set()
    urgent: set[str] = set()
    per_week: dict[tuple[str, int], int] = {}
    last_given: dict[tuple[str, str], dt.datetime] = {}
    start = since.date()
    for event in events:
        given = event.live if version == "live" else event.draft
        tally.events += 1
        subjects.add(event.subject)
        week = (event.occurred_at.date() - start).days // 7
        per_week[(event.subject, week)] = per_week.get((event.subject, week), 0) + len(given)
        tally.advice += len(given)
        tally.events_with_advice += bool(given)
        for advice in given:
            tally.by_severity[advice.severity] = tally.by_severity.get(advice.severity, 0) + 1
            if most_urgent and advice.indicator == most_urgent:
                urgent.add(event.subject)
            before = last_given.get((event.subject, advice.rule_key))
            if before is not None and event.occurred_at - before <= dt.timedelta(days=REPEAT_DAYS):
                tally.repeats += 1
            last_given[(event.subject, advice.rule_key)] = event.occurred_at
    for count in per_week.values():
        tally.per_week[count] = tally.per_week.get(count, 0) + 1
    tally.subjects = len(subjects)
    tally.most_urgent_subjects = len(urgent)
    return tally


def _percent(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def _most_urgent() -> tuple[str, str]:
    indicators = registry.indicators()
    return (indicators[0].code, indicators[0].label) if indicators else ("", "")


def burden_of(events: Sequence[SimulatedEvent], *, since: dt.datetime) -> Burden:
    """Both versions' burden over ``events`` (in judging order per subject), flagged where the
    draft crosses the thresholds of ``rules.conf`` (BURDEN_ADVICE_RISE_PCT, BURDEN_MOST_URGENT_PCT)."""
    code, _ = _most_urgent()
    return burden_from({v: burden_tally(events, version=v, since=since, most_urgent=code) for v in VERSIONS})


def burden_from(tallies: Mapping[str, BurdenTally]) -> Burden:
    """The burden of both versions' tallies, flagged where the draft crosses the thresholds."""
    code, label = _most_urgent()
    burden = Burden(live=tallies["live"].figures(), draft=tallies["draft"].figures(), most_urgent_indicator=label)
    singular, plural = registry.subject()
    rise_limit = float(rules_settings.BURDEN_ADVICE_RISE_PCT)
    rise = burden.rise_pct
    if (rise is not None and rise > rise_limit) or (rise is None and burden.draft.per_week_mean > 0):
        burden.flags.append(
            MSG_BURDEN_RISE.format(
                subject=singular,
                rise=_percent(rise) if rise is not None else "∞",
                live=f"{burden.live.per_week_mean:.2f}",
                draft=f"{burden.draft.per_week_mean:.2f}",
                limit=_percent(rise_limit),
            )
        )
    urgent_limit = float(rules_settings.BURDEN_MOST_URGENT_PCT)
    if code and burden.draft.most_urgent_pct > urgent_limit:
        burden.flags.append(
            MSG_BURDEN_URGENT.format(
                share=_percent(burden.draft.most_urgent_pct),
                subjects=plural,
                indicator=label.lower(),
                limit=_percent(urgent_limit),
            )
        )
    return burden


def simulation_prepare(
    *,
    days: int = 30,
    now: dt.datetime | None = None,
    draft_specs: Sequence[Mapping[str, Any]] | None = None,
    draft_settings: Mapping[str, Any] | None = None,
    part: Any = None,
    stream: bool = False,
) -> SimulationInput:
    """Read everything a simulation needs from the database (the draft, the live version, the
    facts; of ``part`` of the subjects only, one of ``FactSource.timeline_parts``). ``stream``:
    the facts are read while the run goes, a batch of subjects at a time, not all beforehand."""
    source = _source()
    since = (now or timezone.now()) - dt.timedelta(days=days)
    version, live = live_specs()
    draft = list(ruleset_draft_specs() if draft_specs is None else draft_specs)
    timelines = source.timelines(since=since) if part is None else source.timelines(since=since, part=part)
    total = None
    if stream:
        total = source.fact_count(since=since) if part is None else source.fact_count(since=since, part=part)
    return SimulationInput(
        since=since,
        days=days,
        live_version=version,
        live_specs=live,
        draft_specs=draft,
        timelines=timelines if stream else list(timelines),
        live_settings=live_settings(),
        draft_settings=settings_normalize(ruleset_draft_settings() if draft_settings is None else draft_settings),
        total=total,
    )


_EVALUATORS_KEPT = 4
_evaluators: dict[str, Evaluator] = {}


@contextlib.contextmanager
def _evaluator(specs: list[dict[str, Any]], settings: Mapping[str, Any], version: int, *, reuse: bool):
    """An engine for ``specs``: a new one closed after use, or (``reuse``) one kept in this
    process for the same specs, settings and version, the oldest of them dropped beyond a few."""
    if not reuse:
        with Evaluator(specs=specs, version=version, settings=settings, checked=True) as evaluator:
            yield evaluator
        return
    key = f"{version}:{ruleset_fingerprint(specs, settings)}"
    evaluator = _evaluators.pop(key, None)
    if evaluator is not None and evaluator.loaded.broken:  # a crash of the engine: build it again
        evaluator.close()
        evaluator = None
    evaluator = evaluator or Evaluator(specs=specs, version=version, settings=settings, checked=True)
    _evaluators[key] = evaluator  # the newest last
    while len(_evaluators) > _EVALUATORS_KEPT:
        _evaluators.pop(next(iter(_evaluators))).close()
    yield evaluator


def simulation_run(
    data: SimulationInput,
    *,
    progress: Callable[[int, int], None] | None = None,
    keep_all: bool = True,
    reuse: bool = False,
) -> SimulationResult:
    """Judge every subject's timeline with the draft and with the live version (no database
    access, unless the input's timelines are read as the run goes). ``keep_all=False``: the
    events neither version gives advice on are counted (in the burden) but not kept, nor the
    per-fact prediction, as a long run on a worker, which keeps only what its result shows, needs.
    ``reuse``: the engine's rulesets are kept for the next run of the same specs in this process
    (the parts of one simulation on a worker), as the engine never gives a ruleset's memory back."""
    started = time.monotonic()
    draft = {s["key"]: s for s in ruleset_check(data.draft_specs, settings=data.draft_settings, smoke_test=False)}
    live = {s["key"]: s for s in data.live_specs}
    impacts = {
        key: RuleImpact(key=key, name=(draft.get(key) or live[key])["name"], in_draft=key in draft, in_live=key in live)
        for key in sorted(draft.keys() | live.keys())
    }
    if data.total is None:
        total = sum(1 for facts, _ in data.timelines for f in facts if f.occurred_at >= data.since)
    else:
        total = data.total
    done = 0
    subjects = 0
    predicted: dict[str, list[str]] = {}
    judged: list[SimulatedEvent] = []
    source = registry.fact_source()
    describe = source.fact_words if source is not None else FactSource().fact_words
    code, _ = _most_urgent()
    tallies = {version: BurdenTally() for version in VERSIONS}
    # The same advice recurs on many events: one object each, however often it is given.
    advised: dict[Advised, Advised] = {}

    def shown(matches: Iterable[Match]) -> list[Advised]:
        return [advised.setdefault(one, one) for one in map(Advised.of, matches)]

    with (
        _evaluator(list(draft.values()), data.draft_settings, 0, reuse=reuse) as draft_evaluator,
        _evaluator(list(live.values()), data.live_settings, data.live_version, reuse=reuse) as live_evaluator,
    ):
        for facts, labels in data.timelines:
            mine_all = draft_evaluator.judge(facts) if draft else [None] * len(facts)
            theirs_all = live_evaluator.judge(facts) if live else [None] * len(facts)
            counted = False
            own: list[SimulatedEvent] = []
            for fact, mine, theirs in zip(facts, mine_all, theirs_all, strict=True):
                if fact.occurred_at < data.since:
                    continue
                counted = True
                done += 1
                label = labels.get(fact.id, fact.id)
                given = {m.rule_key: m for m in mine.given} if mine else {}
                before = {m.rule_key: m for m in theirs.given} if theirs else {}
                if keep_all:
                    predicted[fact.id] = sorted(given)
                own.append(
                    SimulatedEvent(
                        fact_id=fact.id,
                        subject=fact.group,
                        subject_label=label,
                        occurred_at=fact.occurred_at,
                        words=describe(fact) if keep_all or given or before else "",
                        live=shown(theirs.given) if theirs else [],
                        draft=shown(mine.given) if mine else [],
                    )
                )
                for held in mine.held_back if mine else ():
                    impact = impacts[held.match.rule_key]
                    impact.held[held.reason] = impact.held.get(held.reason, 0) + 1
                for key in given.keys() | before.keys():
                    impact = impacts[key]
                    impact.draft += key in given
                    impact.live += key in before
                    if key not in before:
                        impact.appear += 1
                        impact.example("appear", label, fact.group)
                    elif key not in given:
                        impact.disappear += 1
                        impact.example("disappear", label, fact.group)
                    elif (given[key].message, given[key].severity) != (before[key].message, before[key].severity):
                        impact.change += 1
                        impact.example("change", label, fact.group)
            subjects += counted
            # Burden tallies add up over subjects, so each subject's is taken as it is judged.
            for version in VERSIONS:
                tallies[version].add(burden_tally(own, version=version, since=data.since, most_urgent=code))
            judged.extend(own if keep_all else (event for event in own if event.live or event.draft))
            if progress is not None:
                progress(done, max(done, total))
    return SimulationResult(
        since=data.since,
        days=data.days,
        events=done,
        subjects=subjects,
        seconds=time.monotonic() - started,
        live_version=data.live_version,
        rules=list(impacts.values()),
        predicted=predicted,
        events_judged=judged,
        burden=burden_from(tallies),
        fingerprint=ruleset_fingerprint(data.draft_specs, data.draft_settings),
        tallies=tallies,
    )


def ruleset_simulate(
    *,
    days: int = 30,
    now: dt.datetime | None = None,
    draft_specs: Sequence[Mapping[str, Any]] | None = None,
    draft_settings: Mapping[str, Any] | None = None,
) -> SimulationResult:
    """The draft against the live version over the stored facts of the last ``days`` days."""
    started = time.monotonic()
    result = simulation_run(
        simulation_prepare(days=days, now=now, draft_specs=draft_specs, draft_settings=draft_settings)
    )
    result.seconds = time.monotonic() - started
    return result


# -- kept as jobs, on the task queue -------------------------------------------------------------
SIMULATION_JOB = "simulation"
ROWS_IN_PARTS = "rows_in_parts"  # a whole's result: its events are in its parts' results


def simulation_facts_since(days: int, now: dt.datetime | None = None) -> int:
    """How many stored facts a simulation over ``days`` days would count (cheap: no figures)."""
    return _source().fact_count(since=(now or timezone.now()) - dt.timedelta(days=days))


def _title(days: int) -> str:
    return f"Simulation of the draft over {days} days"


def simulation_start(*, days: int, user: Any = None, now: dt.datetime | None = None, parts: int | None = None) -> Job:
    """Put a simulation of the draft as it is now on the task queue; a worker runs it and any
    web process shows its progress (``rules.jobs.job_get``) and result (``simulation_result``).
    A long one is split by subject into up to ``parts`` parts (default: SIMULATION_PARTS, for
    more than SIMULATION_PART_MIN_FACTS facts), and into parts of at most
    SIMULATION_PART_MAX_FACTS facts, that any workers take; their results combine into exactly
    what one run gives."""
    specs, settings = list(ruleset_draft_specs()), dict(ruleset_draft_settings())
    live = version_live()
    now = now or timezone.now()
    params = {
        "days": days,
        "now": now.isoformat(),
        "draft_specs": specs,
        "draft_settings": settings,
        "fingerprint": ruleset_fingerprint(specs, settings),
        "live_version": live.number if live else 0,
    }
    since = now - dt.timedelta(days=days)
    facts = _source().fact_count(since=since)
    if parts is None:
        parts = min(int(rules_settings.SIMULATION_PARTS), facts // int(rules_settings.SIMULATION_PART_MIN_FACTS))
    # However many workers there are, a part holds at most so many facts: a worker's memory is bounded.
    parts = max(parts, math.ceil(facts / int(rules_settings.SIMULATION_PART_MAX_FACTS)))
    subjects = _source().timeline_parts(since=since, parts=parts) if parts > 1 else [None]
    if len(subjects) == 1:
        return jobs.job_start(SIMULATION_JOB, title=_title(days), params=params, user=user)
    return jobs.job_start_parts(
        SIMULATION_JOB, title=_title(days), params=params, parts=[{"part": part} for part in subjects], user=user
    )


def simulation_store(result: SimulationResult, *, user: Any = None) -> Job:
    """Keep a simulation run in this request as a finished job, so that its rows can be shown,
    filtered and linked like those of one that ran on the task queue."""
    now = timezone.now()
    return Job.objects.create(
        kind=SIMULATION_JOB,
        title=_title(result.days),
        params={"days": result.days, "fingerprint": result.fingerprint, "live_version": result.live_version},
        status=Job.Status.DONE,
        done=result.events,
        total=result.events,
        result=simulation_result_dump(result),
        started_at=now,
        finished_at=now,
        created_by=user if getattr(user, "pk", None) else None,
    )


def simulation_job(job: Job, progress: Callable[[int, int], None]) -> dict[str, Any]:
    """The queue's handler: read, judge, and return the result as JSON for the job's row."""
    started = time.monotonic()
    params = job.params
    data = simulation_prepare(
        days=params["days"],
        now=dt.datetime.fromisoformat(params["now"]),
        draft_specs=params["draft_specs"],
        draft_settings=params["draft_settings"],
        part=params.get("part"),
        stream=True,
    )
    result = simulation_run(data, progress=progress, keep_all=False, reuse=True)
    result.seconds = time.monotonic() - started
    return simulation_result_dump(result)


def simulation_combine(results: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The results of a simulation's parts (disjoint subjects, in ``timeline_parts`` order) as
    the one result a single run over all of them gives: counts summed, each rule's examples
    taken in subject order, the burden from the summed tallies; the events are read from the
    parts (``simulation_result``), in judging order. Each result is read once, in turn."""
    combined: dict[str, Any] = {}
    impacts: list[RuleImpact] = []
    tallies = {version: BurdenTally() for version in VERSIONS}
    for result in results:
        if not combined:
            combined = {name: result[name] for name in ("days", "since", "live_version", "fingerprint")}
            combined.update(events=0, subjects=0, seconds=0.0)
            impacts = [
                RuleImpact(
                    key=impact["key"], name=impact["name"], in_draft=impact["in_draft"], in_live=impact["in_live"]
                )
                for impact in result["rules"]
            ]
        combined["events"] += result["events"]
        combined["subjects"] += result["subjects"]
        combined["seconds"] = max(combined["seconds"], result["seconds"])
        for impact, more in zip(impacts, result["rules"], strict=True):
            for name in ("live", "draft", "appear", "disappear", "change"):
                setattr(impact, name, getattr(impact, name) + more[name])
            for reason, count in more["held"].items():
                impact.held[reason] = impact.held.get(reason, 0) + count
            for kind, labels in more["examples"].items():
                for label in labels:
                    impact.example(kind, label, more["example_subjects"].get(label, ""))
        for version in VERSIONS:
            tallies[version].add(BurdenTally.load(result["tallies"][version]))
    combined["rules"] = [asdict(impact) for impact in impacts]
    combined["burden"] = asdict(burden_from(tallies))
    combined["tallies"] = {version: tally.dump() for version, tally in tallies.items()}
    # The events stay in the parts' results, read in part order when shown: the worker that
    # combines never holds every event of a long simulation at once.
    combined[ROWS_IN_PARTS] = True
    return combined


def simulation_result_dump(result: SimulationResult) -> dict[str, Any]:
    """A result as JSON: its counts, its burden, and each event with advice from either version
    (each piece of advice written once, the events naming them by number). The per-fact
    prediction, which only tests read, and the events without advice are left out."""
    data = {
        name: getattr(result, name) for name in ("days", "events", "subjects", "seconds", "live_version", "fingerprint")
    }
    data["since"] = result.since.isoformat()
    data["rules"] = [asdict(impact) for impact in result.rules]
    data["burden"] = asdict(result.burden) if result.burden is not None else None
    data["tallies"] = {version: tally.dump() for version, tally in result.tallies.items()}
    advice: dict[Advised, int] = {}
    events = []
    for event in result.events_judged:
        if not event.live and not event.draft:
            continue
        numbers = [[advice.setdefault(a, len(advice)) for a in given] for given in (event.live, event.draft)]
        events.append(
            [event.fact_id, event.subject, event.subject_label, event.occurred_at.isoformat(), event.words, *numbers]
        )
    data["events_judged"] = events
    data["advice"] = [list(asdict(a).values()) for a in advice]
    return data


def simulation_result(job: Job) -> SimulationResult | None:
    """A finished simulation job's result, as ``simulation_run`` returned it (without the events
    that got no advice from either version)."""
    if job.kind != SIMULATION_JOB or job.status != Job.Status.DONE or not job.result:
        return None
    data = dict(job.result)
    data["since"] = dt.datetime.fromisoformat(data["since"])
    data["rules"] = [RuleImpact(**impact) for impact in data["rules"]]
    if data.pop(ROWS_IN_PARTS, False):
        parts = Job.objects.filter(parent=job).order_by("part").values_list("result", flat=True).iterator()
    else:
        parts = iter([data])
    data["events_judged"] = [event for part in parts for event in _events_load(part)]
    data.pop("advice", None)
    data["burden"] = burden_load(data.get("burden"))
    data["tallies"] = {version: BurdenTally.load(tally) for version, tally in (data.get("tallies") or {}).items()}
    return SimulationResult(**data)


def _events_load(data: Mapping[str, Any]) -> list[SimulatedEvent]:
    advice = [Advised(*row) for row in data.get("advice") or []]
    labels: dict[str, str] = {}  # one string per subject's label, not one per event
    return [
        SimulatedEvent(
            fact_id=fact_id,
            subject=subject,
            subject_label=labels.setdefault(label, label),
            occurred_at=dt.datetime.fromisoformat(when),
            words=words,
            live=[advice[n] for n in live],
            draft=[advice[n] for n in draft],
        )
        for fact_id, subject, label, when, words, live, draft in data.get("events_judged") or []
    ]


def burden_load(data: Mapping[str, Any] | None) -> Burden | None:
    """A burden kept as JSON (a simulation's, or the one a request froze)."""
    if not data:
        return None
    return Burden(
        live=BurdenFigures(**data["live"]),
        draft=BurdenFigures(**data["draft"]),
        most_urgent_indicator=data.get("most_urgent_indicator", ""),
        flags=list(data.get("flags") or []),
    )


def simulation_get(job_id: str) -> tuple[Job, SimulationResult | None] | None:
    """A simulation job and its result (None while it runs); None when there is no such simulation."""
    job = jobs.job_get(job_id)
    if job is None or job.kind != SIMULATION_JOB:
        return None
    return job, simulation_result(job)


def simulation_latest(*, fingerprint: str, live_version: int) -> Job | None:
    """The newest finished simulation of the draft ``fingerprint`` against live version ``live_version``."""
    found = Job.objects.filter(
        kind=SIMULATION_JOB,
        status=Job.Status.DONE,
        params__fingerprint=fingerprint,
        params__live_version=live_version,
    )
    return found.order_by("-created_at").first()


def simulation_of_draft(*, days: int = 30, user: Any = None) -> Job:
    """The newest simulation of the draft as it is now against the live version; when there is
    none, one is run now (a long one is put on the task queue: its job is returned running)."""
    live = version_live()
    found = simulation_latest(fingerprint=ruleset_draft_fingerprint(), live_version=live.number if live else 0)
    if found is not None:
        return found
    if simulation_facts_since(days) > BACKGROUND_ABOVE:
        return simulation_start(days=days, user=user)
    return simulation_store(simulation_run(simulation_prepare(days=days)), user=user)


@dataclass(frozen=True)
class SimulationRow:
    """One rule on one event whose advice the draft changes (or, for the counts of a version,
    gives): the live version's advice and the draft's side by side."""

    event: SimulatedEvent
    rule_key: str
    rule_name: str
    kind: str  # appear, disappear, change, or "" (the same advice)
    live: Advised | None
    draft: Advised | None


def simulation_rows(result: SimulationResult, *, rule: str = "", kind: str = "") -> list[SimulationRow]:
    """The rows behind a figure: the events where the draft's advice of ``rule`` (any rule when
    empty) would ``kind`` (appear, disappear or change; any of them when empty), or, for "live"
    and "draft", every piece of advice that version gives. Rules whose advice changes most come
    first, each rule's events newest first."""
    order = {impact.key: index for index, impact in enumerate(result.rules_changed_first)}
    rows = []
    for event in result.events_judged:
        live = {a.rule_key: a for a in event.live}
        draft = {a.rule_key: a for a in event.draft}
        kinds = event.kinds()
        for key in live.keys() | draft.keys():
            if rule and key != rule:
                continue
            found = kinds.get(key, "")
            if (kind == "live" and key not in live) or (kind == "draft" and key not in draft):
                continue
            if (kind in KINDS and found != kind) or (not kind and not found):
                continue
            name = (draft.get(key) or live[key]).rule_name
            rows.append(SimulationRow(event, key, name, found, live.get(key), draft.get(key)))
    rows.sort(key=lambda row: row.event.occurred_at, reverse=True)
    rows.sort(key=lambda row: order.get(row.rule_key, len(order)))
    return rows


def simulation_subject_events(job_id: str, subject: str) -> dict[str, SimulatedEvent]:
    """A subject's events in a kept simulation, by fact id (those with advice from either
    version), for the domain's page about the subject to show the draft's advice there."""
    found = simulation_get(job_id)
    if found is None or found[1] is None:
        return {}
    return {event.fact_id: event for event in found[1].events_judged if event.subject == subject}
