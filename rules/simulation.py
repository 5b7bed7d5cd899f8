"""Try it and simulate: what the draft would do, compared with the live version.

``rule_try`` evaluates one typed-in event (optionally with a real subject's history).
``ruleset_simulate`` replays the stored facts of the last N days through both the draft
and the live version and counts, per rule, the advice that would appear, disappear or
change. Facts are read from the database first; the engine work that follows touches no
database, so a long simulation can run in a background thread (``simulation_start``).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from rules.internal.render import display_value
from rules.registry import registry
from rules.selectors import ruleset_draft_specs, version_live
from rules.services import Evaluation, Evaluator, Fact, Match, ruleset_check

MSG_NO_FACT_SOURCE = "No domain has registered a source of stored events, so there is nothing to try or simulate."
EXAMPLES_PER_RULE = 5
BATCH_SIZE = 500
# Simulations of more stored facts than this run in a background thread with a progress bar.
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


# -- try it ---------------------------------------------------------------------------------
@dataclass
class TryResult:
    fact: Fact
    history: list[Fact]
    draft: list[Match]
    live: list[Match]
    live_version: int
    bound: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


def rule_try(
    *,
    fact_type: str,
    data: Mapping[str, Any],
    occurred_at: dt.datetime,
    subject: str | None,
    specs: Sequence[Mapping[str, Any]] | None = None,
) -> TryResult:
    """Which rules of ``specs`` (default: the whole draft) and of the live version fire for this event."""
    fact, history = _source().enrich(
        fact_type=fact_type, data=dict(data), occurred_at=occurred_at, subject=subject or None
    )
    version, live = live_specs()
    draft_specs = list(ruleset_draft_specs() if specs is None else specs)
    with Evaluator(specs=draft_specs) as draft_evaluator:
        draft_matches = draft_evaluator.evaluate_many([(fact, history)])[0].matches
    with Evaluator(specs=live, version=version) as live_evaluator:
        live_matches = live_evaluator.evaluate_many([(fact, history)])[0].matches
    if specs is not None:
        keys = {s["key"] for s in specs}
        live_matches = [m for m in live_matches if m.rule_key in keys]
    by_key = {spec["key"]: spec for spec in draft_specs}
    bound = {m.rule_key: match_bound_values(m, by_key.get(m.rule_key), [fact, *history]) for m in draft_matches}
    return TryResult(
        fact=fact, history=list(history), draft=draft_matches, live=live_matches, live_version=version, bound=bound
    )


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
        shown = (
            "not recorded"
            if value is None
            else display_value(value) + (f" {field_spec.unit}" if field_spec and field_spec.unit else "")
        )
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

    @property
    def changed(self) -> bool:
        return bool(self.appear or self.disappear or self.change)

    def example(self, kind: str, label: str) -> None:
        examples = self.examples[kind]
        if label not in examples and len(examples) < EXAMPLES_PER_RULE:
            examples.append(label)


@dataclass
class SimulationInput:
    since: dt.datetime
    days: int
    live_version: int
    live_specs: list[dict[str, Any]]
    draft_specs: list[dict[str, Any]]
    facts: list[tuple[Fact, list[Fact], str]]


@dataclass
class SimulationResult:
    since: dt.datetime
    days: int
    events: int
    subjects: int
    seconds: float
    live_version: int
    rules: list[RuleImpact]

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
    *, days: int = 30, now: dt.datetime | None = None, draft_specs: Sequence[Mapping[str, Any]] | None = None
) -> SimulationInput:
    """Read everything a simulation needs from the database (the draft, the live version, the facts)."""
    source = _source()
    since = (now or timezone.now()) - dt.timedelta(days=days)
    version, live = live_specs()
    draft = list(ruleset_draft_specs() if draft_specs is None else draft_specs)
    with Evaluator(specs=draft) as a, Evaluator(specs=live) as b:
        window = max(a.history_window, b.history_window)
        types = a.history_types | b.history_types
    facts = list(source.stored_facts(since=since, window=window if types else None, types=types))
    return SimulationInput(
        since=since, days=days, live_version=version, live_specs=live, draft_specs=draft, facts=facts
    )


def _advised(
    evaluations: Sequence[Evaluation],
    facts: Sequence[tuple[Fact, list[Fact], str]],
    last: dict[tuple[str, str], dt.datetime],
) -> list[dict[str, Match]]:
    """Matches that would become advice, per fact: a rule cooling down for the subject gives none."""
    advised = []
    for evaluation, (fact, _, _) in zip(evaluations, facts, strict=True):
        kept = {}
        for match in evaluation.matches:
            slot = (fact.group, match.rule_key)
            previous = last.get(slot)
            if (
                match.cooldown_days
                and previous is not None
                and fact.occurred_at - previous < dt.timedelta(days=match.cooldown_days)
            ):
                continue
            last[slot] = fact.occurred_at
            kept[match.rule_key] = match
        advised.append(kept)
    return advised


def _pattern_step_specs(specs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each step of each enabled pattern rule as a one-event rule with that step's conditions."""
    steps = []
    for index, spec in enumerate(specs):
        if spec.get("enabled") is False or (spec.get("pattern") or "single") == "single":
            continue
        for number, step in enumerate(spec.get("steps") or [], start=1):
            conditions = [{**c, "step": 1} for c in spec.get("conditions") or [] if int(c.get("step") or 1) == number]
            used = {c.get("parameter") for c in conditions if c.get("parameter")}
            steps.append(
                {
                    **spec,
                    "key": f"s{index}-{number}",
                    "pattern": "single",
                    "count": None,
                    "window_hours": None,
                    "cooldown_days": 0,
                    "enabled": True,
                    "message": "-",
                    "steps": [step],
                    "conditions": conditions,
                    "parameters": [p for p in spec.get("parameters") or [] if p.get("name") in used],
                }
            )
    return steps


def _pattern_candidates(
    facts: Sequence[tuple[Fact, list[Fact], str]], specs: Sequence[Mapping[str, Any]], batch_size: int
) -> set[str] | None:
    """Ids of the facts that meet some step of some pattern rule (None: no pattern rules).

    Only these can take part in a pattern match, so the others are left out of every
    history, and a new fact that is not one of them needs no history at all. This keeps
    the pattern engine's work proportional to the relevant facts, not to all of them.
    """
    step_specs = _pattern_step_specs(specs)
    if not step_specs:
        return None
    candidates: set[str] = set()
    with Evaluator(specs=step_specs) as steps:
        for start in range(0, len(facts), batch_size):
            batch = facts[start : start + batch_size]
            evaluations = steps.evaluate_many([(f, ()) for f, _, _ in batch])
            for (fact, _, _), evaluation in zip(batch, evaluations, strict=True):
                if evaluation.matches:
                    candidates.add(fact.id)
    return candidates


def _trimmed(
    batch: Sequence[tuple[Fact, list[Fact], str]], candidates: set[str] | None
) -> list[tuple[Fact, list[Fact]]]:
    if candidates is None:
        return [(fact, []) for fact, _, _ in batch]
    return [
        (fact, [h for h in history if h.id in candidates] if fact.id in candidates else [])
        for fact, history, _ in batch
    ]


class _Replay:
    """One evaluator over a subset of rules, with its own cooldown clock and pattern candidates."""

    def __init__(
        self,
        specs: Sequence[Mapping[str, Any]],
        facts: Sequence[tuple[Fact, list[Fact], str]],
        version: int,
        batch_size: int,
    ) -> None:
        self.evaluator = Evaluator(specs=specs, version=version) if specs else None
        self.candidates = _pattern_candidates(facts, specs, batch_size) if specs else None
        self.last: dict[tuple[str, str], dt.datetime] = {}

    def advised(self, batch: Sequence[tuple[Fact, list[Fact], str]]) -> list[dict[str, Match]]:
        if self.evaluator is None:
            return [{} for _ in batch]
        return _advised(self.evaluator.evaluate_many(_trimmed(batch, self.candidates)), batch, self.last)

    def close(self) -> None:
        if self.evaluator is not None:
            self.evaluator.close()


def simulation_run(
    data: SimulationInput, *, progress: Callable[[int, int], None] | None = None, batch_size: int = BATCH_SIZE
) -> SimulationResult:
    """Replay the facts through the draft and the live version (no database access).

    A rule that is the same in both gives the same advice in both (cooldowns are per
    rule), so the rules they share are replayed once and only the differing ones twice.
    """
    started = time.monotonic()
    draft = {s["key"]: s for s in ruleset_check(data.draft_specs)} if data.draft_specs else {}
    live = {s["key"]: s for s in data.live_specs}
    shared = [s for key, s in draft.items() if live.get(key) == s]
    impacts = {
        key: RuleImpact(key=key, name=(draft.get(key) or live[key])["name"], in_draft=key in draft, in_live=key in live)
        for key in sorted(draft.keys() | live.keys())
    }
    replays = [
        _Replay(shared, data.facts, data.live_version, batch_size),
        _Replay([s for key, s in draft.items() if live.get(key) != s], data.facts, 0, batch_size),
        _Replay([s for key, s in live.items() if draft.get(key) != s], data.facts, data.live_version, batch_size),
    ]
    total = len(data.facts)
    try:
        for start in range(0, total, batch_size):
            batch = data.facts[start : start + batch_size]
            both, draft_only, live_only = (replay.advised(batch) for replay in replays)
            for (_, _, label), same, mine, theirs in zip(batch, both, draft_only, live_only, strict=True):
                for key in same:
                    impacts[key].draft += 1
                    impacts[key].live += 1
                for key in mine.keys() | theirs.keys():
                    impact = impacts[key]
                    impact.draft += key in mine
                    impact.live += key in theirs
                    if key not in theirs:
                        impact.appear += 1
                        impact.example("appear", label)
                    elif key not in mine:
                        impact.disappear += 1
                        impact.example("disappear", label)
                    elif (mine[key].message, mine[key].severity) != (theirs[key].message, theirs[key].severity):
                        impact.change += 1
                        impact.example("change", label)
            if progress is not None:
                progress(min(start + batch_size, total), total)
    finally:
        for replay in replays:
            replay.close()
    return SimulationResult(
        since=data.since,
        days=data.days,
        events=total,
        subjects=len({f.group for f, _, _ in data.facts}),
        seconds=time.monotonic() - started,
        live_version=data.live_version,
        rules=list(impacts.values()),
    )


def ruleset_simulate(
    *, days: int = 30, now: dt.datetime | None = None, draft_specs: Sequence[Mapping[str, Any]] | None = None
) -> SimulationResult:
    """The draft against the live version over the stored facts of the last ``days`` days."""
    started = time.monotonic()
    result = simulation_run(simulation_prepare(days=days, now=now, draft_specs=draft_specs))
    result.seconds = time.monotonic() - started
    return result


# -- background jobs --------------------------------------------------------------------------
@dataclass
class SimulationJob:
    id: str
    total: int
    done: int = 0
    result: SimulationResult | None = None
    error: str = ""
    started: float = field(default_factory=time.monotonic)

    @property
    def finished(self) -> bool:
        return self.result is not None or bool(self.error)


_jobs: dict[str, SimulationJob] = {}
_jobs_lock = threading.Lock()
_MAX_JOBS = 20


def simulation_start(data: SimulationInput) -> SimulationJob:
    """Run ``simulation_run`` in a background thread; poll ``simulation_job(id)`` for progress.

    Jobs live in this process's memory (the admin polls the worker that started them).
    """
    job = SimulationJob(id=uuid.uuid4().hex, total=len(data.facts))

    def progress(done: int, total: int) -> None:
        job.done = done

    def work() -> None:
        try:
            job.result = simulation_run(data, progress=progress)
            job.result.seconds = time.monotonic() - job.started
        except Exception as exc:  # shown to the clinician on the progress page
            job.error = f"{type(exc).__name__}: {exc}"

    with _jobs_lock:
        while len(_jobs) >= _MAX_JOBS:
            _jobs.pop(next(iter(_jobs)))
        _jobs[job.id] = job
    threading.Thread(target=work, name=f"simulation-{job.id[:8]}", daemon=True).start()
    return job


def simulation_job(job_id: str) -> SimulationJob | None:
    with _jobs_lock:
        return _jobs.get(job_id)
