"""Try it and simulate: what the draft would do, compared with the live version.

Both judge exactly as production does (``rules.evaluation.timeline_judge``): each subject's
facts one at a time in time order, with the same cooldowns, precedence, referral and limit
per event. ``rule_try`` judges one typed-in event after a real subject's history and says
what was given, what was held back and why. ``ruleset_simulate`` judges every subject with
facts in the last N days from their first fact, through the draft and through the live
version, and counts per rule the advice that would appear, disappear or change: what
publishing the draft and re-evaluating would do. Facts are read from the database first;
the engine work that follows touches no database. A long simulation runs as a job on the
task queue (``simulation_start``).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from django.utils import timezone

from rules import jobs
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
from rules.internal.render import display_value
from rules.models import Job
from rules.registry import registry
from rules.selectors import ruleset_draft_settings, ruleset_draft_specs, version_live
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
) -> TryResult:
    """What the draft (default: the whole draft; or ``specs``) and the live version would give
    for this event after the subject's history: the advice, and what was held back and why."""
    fact, history = _source().enrich(
        fact_type=fact_type, data=dict(data), occurred_at=occurred_at, subject=subject or None
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
        rows.append((fact.occurred_at.strftime("%Y-%m-%d %H:%M"), label, ", ".join(shown)))
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


@dataclass
class SimulationInput:
    since: dt.datetime
    days: int
    live_version: int
    live_specs: list[dict[str, Any]]
    draft_specs: list[dict[str, Any]]
    timelines: list[tuple[list[Fact], dict[str, str]]]
    live_settings: dict[str, Any] = field(default_factory=dict)
    draft_settings: dict[str, Any] = field(default_factory=dict)

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

    @property
    def totals(self) -> dict[str, int]:
        return {
            name: sum(getattr(r, name) for r in self.rules)
            for name in ("live", "draft", "appear", "disappear", "change")
        }

    @property
    def changed_rules(self) -> list[RuleImpact]:
        return [r for r in self.rules if r.changed]


def simulation_prepare(
    *,
    days: int = 30,
    now: dt.datetime | None = None,
    draft_specs: Sequence[Mapping[str, Any]] | None = None,
    draft_settings: Mapping[str, Any] | None = None,
) -> SimulationInput:
    """Read everything a simulation needs from the database (the draft, the live version, the facts)."""
    source = _source()
    since = (now or timezone.now()) - dt.timedelta(days=days)
    version, live = live_specs()
    draft = list(ruleset_draft_specs() if draft_specs is None else draft_specs)
    return SimulationInput(
        since=since,
        days=days,
        live_version=version,
        live_specs=live,
        draft_specs=draft,
        timelines=list(source.timelines(since=since)),
        live_settings=live_settings(),
        draft_settings=settings_normalize(ruleset_draft_settings() if draft_settings is None else draft_settings),
    )


def simulation_run(data: SimulationInput, *, progress: Callable[[int, int], None] | None = None) -> SimulationResult:
    """Judge every subject's timeline with the draft and with the live version (no database access)."""
    started = time.monotonic()
    draft = {s["key"]: s for s in ruleset_check(data.draft_specs, settings=data.draft_settings, smoke_test=False)}
    live = {s["key"]: s for s in data.live_specs}
    impacts = {
        key: RuleImpact(key=key, name=(draft.get(key) or live[key])["name"], in_draft=key in draft, in_live=key in live)
        for key in sorted(draft.keys() | live.keys())
    }
    total = sum(1 for facts, _ in data.timelines for f in facts if f.occurred_at >= data.since)
    done = 0
    subjects = 0
    predicted: dict[str, list[str]] = {}
    with (
        Evaluator(specs=list(draft.values()), settings=data.draft_settings, checked=True) as draft_evaluator,
        Evaluator(
            specs=list(live.values()), version=data.live_version, settings=data.live_settings, checked=True
        ) as live_evaluator,
    ):
        for facts, labels in data.timelines:
            mine_all = draft_evaluator.judge(facts) if draft else [None] * len(facts)
            theirs_all = live_evaluator.judge(facts) if live else [None] * len(facts)
            counted = False
            for fact, mine, theirs in zip(facts, mine_all, theirs_all, strict=True):
                if fact.occurred_at < data.since:
                    continue
                counted = True
                done += 1
                label = labels.get(fact.id, fact.id)
                given = {m.rule_key: m for m in mine.given} if mine else {}
                before = {m.rule_key: m for m in theirs.given} if theirs else {}
                predicted[fact.id] = sorted(given)
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
            if progress is not None:
                progress(done, total)
    return SimulationResult(
        since=data.since,
        days=data.days,
        events=total,
        subjects=subjects,
        seconds=time.monotonic() - started,
        live_version=data.live_version,
        rules=list(impacts.values()),
        predicted=predicted,
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


# -- on the task queue ------------------------------------------------------------------------
SIMULATION_JOB = "simulation"


def simulation_facts_since(days: int, now: dt.datetime | None = None) -> int:
    """How many stored facts a simulation over ``days`` days would count (cheap: no figures)."""
    return _source().fact_count(since=(now or timezone.now()) - dt.timedelta(days=days))


def simulation_start(*, days: int, user: Any = None, now: dt.datetime | None = None) -> Job:
    """Put a simulation of the draft as it is now on the task queue; a worker runs it and any
    web process shows its progress (``rules.jobs.job_get``) and result (``simulation_result``)."""
    params = {
        "days": days,
        "now": (now or timezone.now()).isoformat(),
        "draft_specs": list(ruleset_draft_specs()),
        "draft_settings": dict(ruleset_draft_settings()),
    }
    return jobs.job_start(SIMULATION_JOB, title=f"Simulation of the draft over {days} days", params=params, user=user)


def simulation_job(job: Job, progress: Callable[[int, int], None]) -> dict[str, Any]:
    """The queue's handler: read, judge, and return the result as JSON for the job's row."""
    started = time.monotonic()
    params = job.params
    data = simulation_prepare(
        days=params["days"],
        now=dt.datetime.fromisoformat(params["now"]),
        draft_specs=params["draft_specs"],
        draft_settings=params["draft_settings"],
    )
    result = simulation_run(data, progress=progress)
    result.seconds = time.monotonic() - started
    return simulation_result_dump(result)


def simulation_result_dump(result: SimulationResult) -> dict[str, Any]:
    """A result as JSON (without the per-fact prediction, which only tests read)."""
    data = asdict(result)
    data["since"] = result.since.isoformat()
    data["predicted"] = {}
    return data


def simulation_result(job: Job) -> SimulationResult | None:
    """A finished simulation job's result, as ``simulation_run`` returned it."""
    if job.kind != SIMULATION_JOB or job.status != Job.Status.DONE or not job.result:
        return None
    data = dict(job.result)
    data["since"] = dt.datetime.fromisoformat(data["since"])
    data["rules"] = [RuleImpact(**impact) for impact in data["rules"]]
    return SimulationResult(**data)
