"""A prototype of the fix proposed in the benchmark report (not used by the product).

durable_rules 2.0.28 corrupts memory when facts that completed a multi-fact pattern are
retracted after the action was completed: ``deleteCurrentAction`` frees the fired frame
but leaves the facts' location records pointing at it, and ``retract_facts`` then calls
``deleteMessageFromFrame`` on the freed frame, whose loop runs past ``messages[16]`` (it
zeroes a slot without lowering ``messageCount``). The process dies with SIGSEGV a few
hundred evaluations into a realistic workload; one-fact rules are not affected.

The prototype keeps durable_rules for every condition but never lets it join facts: each
step of a pattern is compiled as a one-fact rule (``<key>#<step>``), the new event and its
history go through that ruleset, and the ordering and time window are joined in Python
over the (few) facts that satisfied a step. Same answers as the current adapter (the
benchmark compares the firings), no multi-fact frames, and no C(n, k) combinations.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from rules.compiler import ruleset_compile
from rules.internal.engine import DurableRuleset, single_binding
from rules.internal.facts import SCRATCH_SID, projector
from rules.registry import registry
from rules.services import Evaluation, Match, ruleset_check

STEP = "#"


def step_specs(pattern: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The pattern's steps as one-fact rules: ``key#1``, ``key#2``..."""
    out = []
    for number, step in enumerate(pattern["steps"], start=1):
        out.append({
            **pattern, "key": f"{pattern['key']}{STEP}{number}", "pattern": "single", "count": None,
            "window_hours": None, "steps": [dict(step)], "message": "", "cooldown_days": 0,
            "conditions": [{**c, "step": 1} for c in pattern["conditions"] if c["step"] == number],
        })
    return out


class PrototypeEvaluator:
    def __init__(self, specs: Sequence[Mapping[str, Any]], version: int = 0) -> None:
        specs = ruleset_check(specs)
        self.version = version
        self.compiled = ruleset_compile(specs)
        patterns = [s for s in specs if s["enabled"] and s["pattern"] != "single"]
        self.steps = ruleset_compile([step for p in patterns for step in step_specs(p)])
        self.single = DurableRuleset(self.compiled.single_json)
        self.step_rules = DurableRuleset(self.steps.single_json)
        date_fields = self.compiled.date_fields
        self.single_projectors = {t: projector(f, date_fields) for t, f in self.compiled.single_fields.items()}
        self.step_projectors = {t: projector(f, date_fields) for t, f in self.steps.single_fields.items()}
        # pattern key -> (step number of each position in the chain, window in seconds)
        self.chains: dict[str, tuple[tuple[int, ...], float]] = {}
        for p in patterns:
            chain = (1,) * p["count"] if p["pattern"] == "count" else tuple(range(1, len(p["steps"]) + 1))
            self.chains[p["key"]] = (chain, float(p["window_hours"]) * 3600)
        ranks = {choice.code: index for index, choice in enumerate(registry.severities())}
        self.order = {key: (ranks.get(m.severity, len(ranks)), key) for key, m in self.compiled.rules.items()}

    def close(self) -> None:
        self.single.close()
        self.step_rules.close()

    def evaluate_many(self, items) -> list[Evaluation]:
        compiled = self.compiled
        found: list[dict[str, tuple[int, ...]]] = [{} for _ in items]
        documents = []
        for index, (fact, _) in enumerate(items):
            project = self.single_projectors.get(fact.type)
            if project is not None:
                documents.append(project({"id": str(index), "sid": SCRATCH_SID, "type": fact.type}, fact.data))
        for message in self.single.run(documents):
            rule, engine_id = single_binding(message)
            found[int(engine_id)][rule] = ()

        ordered: list[list[Any]] = [[] for _ in items]
        if self.chains:
            window = compiled.history_window
            history_types = compiled.history_types
            documents = []
            new_positions = [-1] * len(items)
            for index, (fact, history) in enumerate(items):
                if fact.type not in history_types:
                    continue
                relevant = [h for h in history if h.type in history_types and h.id != fact.id
                            and abs(h.occurred_at - fact.occurred_at) <= window]
                if not relevant:
                    continue
                facts = sorted([fact, *relevant], key=lambda f: (f.occurred_at, f.id))
                ordered[index] = facts
                for position, item in enumerate(facts):
                    if item is fact:
                        new_positions[index] = position
                    project = self.step_projectors.get(item.type)
                    if project is not None:
                        documents.append(project({"id": f"{index}.{position}", "sid": SCRATCH_SID,
                                                  "type": item.type}, item.data))
            # (evaluation, pattern) -> step number -> positions that satisfy it
            hits: dict[tuple[int, str], dict[int, set[int]]] = {}
            for message in self.step_rules.run(documents):
                name, engine_id = single_binding(message)
                key, step = name.rsplit(STEP, 1)
                index, position = engine_id.split(".")
                hits.setdefault((int(index), key), {}).setdefault(int(step), set()).add(int(position))
            for (index, key), by_step in hits.items():
                chain, seconds = self.chains[key]
                times = [f.occurred_at.timestamp() for f in ordered[index]]
                positions = _best_chain(chain, by_step, times, seconds, new_positions[index])
                if positions:
                    found[index][key] = positions

        rules, version, order = compiled.rules, self.version, self.order
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


def _best_chain(chain: tuple[int, ...], by_step: Mapping[int, set[int]], times: Sequence[float], seconds: float,
                new: int) -> tuple[int, ...] | None:
    """Positions p1 < ... < pk, p_j satisfying step chain[j], last within ``seconds`` of the
    first, one of them ``new``; of several, the one with the most recent facts (as the
    adapter chooses). Searched from the newest facts back, so the first found is the best."""
    if new < 0 or not any(new in by_step.get(step, ()) for step in chain):
        return None
    candidates = {step: sorted(by_step.get(step, ()), reverse=True) for step in set(chain)}
    k = len(chain)
    picked: list[int] = [0] * k

    def search(j: int, below: int, has_new: bool) -> bool:
        # fill position j (from the last step back to the first), all positions < below
        if j < 0:
            return has_new and times[picked[-1]] - times[picked[0]] <= seconds
        for p in candidates[chain[j]]:
            if p >= below:
                continue
            if j < k - 1 and times[picked[k - 1]] - times[p] > seconds:
                break  # older ones are further away
            if not has_new and p < new:
                break  # positions only go down from here: ``new`` can no longer be picked
            picked[j] = p
            if search(j - 1, p, has_new or p == new):
                return True
        return False

    return tuple(picked) if search(k - 1, len(times), False) else None
