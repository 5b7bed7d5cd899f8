"""Engine benchmark: our durable_rules adapter next to the raw C loop, zen-engine and business-rules.

    python -m bench.engine [--facts 20000] [--evaluations 3000] [--history 30] [--repeats 5] [--cpu-time]

(a) the pack's one-event rules over N independent events; (b) the whole pack (patterns
included) over E evaluations that each carry H history events of the same member.
All on the same rules and the same seeded events, on a temporary SQLite database (never
the developer's). Each figure is the best of --repeats timed passes over all the events
(each after an untimed warm-up; the passes of all contenders are interleaved), in
evaluations (events judged) per second, timed by the wall clock or, with --cpu-time, by
the CPU time the child spent (``time.process_time``): other processes on a busy machine
stretch the first and hardly the second (only through the caches they share). Each
contender runs in a forked child of this process (same rules, same events in memory):
should durable_rules' C core crash the process (SIGSEGV), only that figure is lost, and
reported.

(b)'s raw C loop runs the product's compiled rules (``single_json`` and the pattern-step
rules of ``pattern_json``) on the same facts the adapter asserts, and does the engine's
work only: the adapter's chaining of step hits in time order is not in its time. Its
hits are chained after the timed pass by a brute-force plain-Python reference, and the
adapter's firings (rule and the facts chained) must equal those.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bench.common import (
    SEED,
    Outcome,
    django_setup,
    fmt_rate,
    fmt_ratio,
    history_items,
    machine_line,
    pack_specs,
    package_version,
    rss_mb,
    run_isolated,
    save_result,
    single_facts,
    table,
)

BATCH_SIZES = (100, 250, 500)
ZEN_FAST = "zen-engine ZenEngine.evaluate, static loader, rule fields only"
PATTERN_BATCH_SIZES = (10, 50)
# How a pass is timed: the wall clock, or (--cpu-time) the child's CPU time. Set by main()
# before any child is forked.
clock: Callable[[], float] = time.perf_counter

Run = Callable[[Sequence[Any], int], Any]  # (chunk of items, offset of the chunk) -> outputs
Fired = Callable[[Any, int], Iterable[tuple[int, str]]]  # (outputs, offset) -> (item index, rule key)


@dataclass
class Contender:
    name: str
    how: str
    group: str  # adapter | raw | zen | business-rules
    make: Callable[[], tuple[Run, Fired, Callable[[], None]]]


@dataclass
class Row:
    contender: Contender
    count: int
    outcome: Outcome  # merged over the passes
    crashes: list[str]

    @property
    def rate(self) -> float | None:
        return self.outcome.rate(self.count)

    @property
    def fired(self) -> set:
        return self.outcome.fired if self.outcome.fired is not None else set()


def one_pass(contender: Contender, items: Sequence[Any], *, chunk: int, warm: int) -> Outcome:
    """One timed pass over ``items`` in a forked child (after an untimed warm-up)."""

    def work(send) -> None:
        run, fired_of, close = contender.make()
        run(items[:warm], 0)
        outputs: list[tuple[Any, int]] = []
        started = clock()
        for start in range(0, len(items), chunk):
            outputs.append((run(items[start : start + chunk], start), start))
            send("progress", min(start + chunk, len(items)), clock() - started)
        send("pass", clock() - started)
        fired: set = set()
        for output, offset in outputs:
            fired.update(fired_of(output, offset))
        send("fired", fired)
        close()

    return run_isolated(work)


def measure_all(
    contenders: Sequence[Contender], items: Sequence[Any], *, repeats: int, chunk: int, warm: int
) -> list[Row]:
    """``repeats`` rounds; each round runs one pass of every contender, so that a noisy moment
    on a shared machine hits one pass of everyone rather than all passes of one."""
    merged = {c.name: Outcome() for c in contenders}
    crashes: dict[str, list[str]] = {c.name: [] for c in contenders}
    for round_number in range(1, repeats + 1):
        print(f"  round {round_number}/{repeats}", flush=True)
        for contender in contenders:
            outcome = one_pass(contender, items, chunk=chunk, warm=warm)
            total = merged[contender.name]
            total.passes.extend(outcome.passes)
            if outcome.rss_mb:
                total.rss_mb = max(total.rss_mb or 0.0, outcome.rss_mb)
            if outcome.ok:
                if total.fired is None:
                    total.fired = outcome.fired
                elif total.fired != outcome.fired:
                    total.extra["inconsistent"] = True
            else:
                done, seconds = outcome.progress
                crashes[contender.name].append(outcome.error.splitlines()[0] if outcome.error else "failed")
                if done and (not total.progress[0] or done / seconds > total.progress[0] / total.progress[1]):
                    total.progress = outcome.progress
                print(
                    f"    {contender.name}: FAILED ({crashes[contender.name][-1]}) after {done:,} evaluations",
                    flush=True,
                )
    rows = []
    for contender in contenders:
        total = merged[contender.name]
        if total.fired is None:
            total.error = "; ".join(sorted(set(crashes[contender.name]))) or "failed"
        row = Row(contender, len(items), total, crashes[contender.name])
        rows.append(row)
        if total.ok:
            note = f"; failed in {len(row.crashes)} of {repeats} passes" if row.crashes else ""
            print(f"  {contender.name:<58} {row.rate:>10,.0f}/s  ({len(row.fired):,} firings{note})", flush=True)
    return rows


# -- our adapter ------------------------------------------------------------------------
def evaluations_fired(evaluations, offset: int):
    return (
        (offset + index, match.rule_key) for index, evaluation in enumerate(evaluations) for match in evaluation.matches
    )


def evaluations_fired_with_facts(evaluations, offset: int):
    """(b): the facts each match chained count too (checked against ``reference_chain``)."""
    return (
        (offset + index, match.rule_key, match.fact_ids)
        for index, evaluation in enumerate(evaluations)
        for match in evaluation.matches
    )


def evaluator_contender(name: str, how: str, specs, *, batch: int | None, fired=evaluations_fired) -> Contender:
    def make():
        from rules.evaluation import Evaluator

        evaluator = Evaluator(specs=specs)
        if batch is None:

            def run(chunk, offset):
                evaluate = evaluator.evaluate_many
                return [evaluate([item])[0] for item in chunk]
        else:

            def run(chunk, offset):
                out = []
                for start in range(0, len(chunk), batch):
                    out.extend(evaluator.evaluate_many(chunk[start : start + batch]))
                return out

        return run, fired, evaluator.close

    return Contender(name, how, "adapter", make)


def published_contender(name: str, how: str, *, batch: int | None, fired=evaluations_fired) -> Contender:
    def make():
        from rules.evaluation import facts_evaluate, facts_evaluate_many

        if batch is None:

            def run(chunk, offset):
                return [facts_evaluate(fact=fact, history=history) for fact, history in chunk]
        else:

            def run(chunk, offset):
                out = []
                for start in range(0, len(chunk), batch):
                    out.extend(facts_evaluate_many(items=chunk[start : start + batch]))
                return out

        return run, fired, lambda: None

    return Contender(name, how, "adapter", make)


# -- the raw durable_rules C loop: assert, drain every action, retract ---------------------
def document_as_sent(engine_id: str, fact) -> dict:
    return {"id": engine_id, "sid": "0", "type": fact.type, **fact.data}


def document_trimmer(fields_by_type: dict) -> Callable[[str, Any], dict]:
    def make(engine_id: str, fact) -> dict:
        document = {"id": engine_id, "sid": "0", "type": fact.type}
        data = fact.data
        for name in fields_by_type.get(fact.type, ()):
            value = data.get(name)
            if value is not None:
                document[name] = value
        return document

    return make


def raw_single_contender(name: str, how: str, ruleset_json: str, make_document, *, batch: int | None) -> Contender:
    """Per event: assert_fact, drain every action (json.loads each message), retract_fact;
    or ``batch`` events per assert_facts in the one scratch sid."""

    def make():
        import durable_rules_engine as dre

        handle = dre.create_ruleset("bench_raw_single", ruleset_json)
        assert_fact, retract_fact = dre.assert_fact, dre.retract_fact
        assert_facts, retract_facts = dre.assert_facts, dre.retract_facts
        start_action, complete = dre.start_action, dre.complete_and_start_action
        dumps, loads = json.dumps, json.loads

        def run_one(chunk, offset):
            fired = []
            for index, (fact, _) in enumerate(chunk):
                payload = dumps(make_document(str(index), fact))
                assert_fact(handle, payload)
                started = start_action(handle)
                if started:
                    _, message, state = started
                    while message:
                        for rule in loads(message):
                            fired.append((offset + index, rule))
                        message = complete(handle, state)
                retract_fact(handle, payload)
            return fired

        def run_batched(chunk, offset):
            fired = []
            for start in range(0, len(chunk), batch):
                payload = dumps(
                    [make_document(str(start + i), fact) for i, (fact, _) in enumerate(chunk[start : start + batch])]
                )
                assert_facts(handle, payload)
                started = start_action(handle)
                if started:
                    _, message, state = started
                    while message:
                        for rule, bound in loads(message).items():
                            fired.append((offset + int(bound["m"]["id"]), rule))
                        message = complete(handle, state)
                retract_facts(handle, payload)
            return fired

        run = run_one if batch is None else run_batched
        return run, (lambda out, offset: out), lambda: dre.delete_ruleset(handle)

    return Contender(name, how, "raw", make)


def raw_pattern_contender(name: str, how: str, compiled, make_document, make_pattern_document=None) -> Contender:
    """The raw engine work of one evaluation on the product's compiled rules, without the
    adapter's chaining: the new event through the one-event ruleset (assert_facts, drain
    with json.loads, retract_facts); then, if a pattern can use it, the member's history
    inside the widest window plus the new event, in time order, through the pattern-step
    ruleset (one-fact rules ``<key>#<step>``) the same way, keeping each step's hits.

    The timed loop only records the hits; the firings are derived after the timed pass by
    ``reference_firings`` (a brute-force plain-Python chaining, independent of the
    adapter's ``best_chain``), so that this row's firings can be checked against the
    adapter's without the chaining counting in the raw loop's time."""

    def make():
        import durable_rules_engine as dre

        single = dre.create_ruleset("bench_raw_b_single", compiled.single_json)
        steps = dre.create_ruleset("bench_raw_b_steps", compiled.pattern_json)
        history_types = compiled.history_types
        window = compiled.history_window
        assert_facts, retract_facts = dre.assert_facts, dre.retract_facts
        start_action, complete = dre.start_action, dre.complete_and_start_action
        dumps, loads = json.dumps, json.loads
        make_pattern = make_pattern_document or make_document

        def run(chunk, offset):
            records = []
            for index, (fact, history) in enumerate(chunk):
                singles: list[str] = []
                hits: list[tuple[str, str]] = []
                payload = dumps([make_document("new", fact)])
                assert_facts(single, payload)
                started = start_action(single)
                if started:
                    _, message, state = started
                    while message:
                        singles.extend(loads(message))
                        message = complete(single, state)
                retract_facts(single, payload)

                facts = ()
                if fact.type in history_types:
                    relevant = [
                        h
                        for h in history
                        if h.type in history_types
                        and h.id != fact.id
                        and abs(h.occurred_at - fact.occurred_at) <= window
                    ]
                    if relevant:
                        facts = sorted([fact, *relevant], key=lambda f: (f.occurred_at, f.id))
                        payload = dumps([make_pattern(str(position), item) for position, item in enumerate(facts)])
                        assert_facts(steps, payload)
                        started = start_action(steps)
                        if started:
                            _, message, state = started
                            while message:
                                for rule, bound in loads(message).items():
                                    hits.append((rule, bound["m"]["id"]))
                                message = complete(steps, state)
                        retract_facts(steps, payload)
                records.append((offset + index, fact, singles, hits, facts))
            return records

        def fired(records, offset):
            return (firing for record in records for firing in reference_firings(compiled.chains, *record))

        def close():
            dre.delete_ruleset(single)
            dre.delete_ruleset(steps)

        return run, fired, close

    return Contender(name, how, "raw", make)


def reference_chain(
    steps: tuple[int, ...], by_step: dict[int, set[int]], times: Sequence[float], window: float, new: int
) -> tuple[int, ...] | None:
    """Brute force, the plain reading of a pattern: of every choice of positions p1 < … < pk
    (facts in time order) where p_j satisfies step ``steps[j]``, one of them the new fact,
    the last within ``window`` seconds of the first, the one with the most recent facts
    (compared from the last position back)."""
    if len(set(steps)) == 1:
        choices = itertools.combinations(sorted(by_step.get(steps[0], ())), len(steps))
    else:
        choices = (
            c
            for c in itertools.product(*(sorted(by_step.get(s, ())) for s in steps))
            if all(a < b for a, b in itertools.pairwise(c))
        )
    best = None
    for choice in choices:
        if new in choice and times[choice[-1]] - times[choice[0]] <= window:
            if best is None or choice[::-1] > best[::-1]:
                best = choice
    return best


def reference_firings(chains, index: int, fact, singles, hits, facts) -> Iterable[tuple[int, str, tuple[str, ...]]]:
    """(evaluation, rule, fact ids) of one raw-loop record: the one-event rules that fired,
    and each pattern whose steps' hits chain up (``reference_chain``) with the new fact."""
    for rule in singles:
        yield index, rule, (fact.id,)
    by_key: dict[str, dict[int, set[int]]] = {}
    for name, position in hits:
        key, step = name.rsplit("#", 1)
        by_key.setdefault(key, {}).setdefault(int(step), set()).add(int(position))
    if not by_key:
        return
    times = [f.occurred_at.timestamp() for f in facts]
    new = next(position for position, f in enumerate(facts) if f is fact)
    for key, by_step in by_key.items():
        steps, window = chains[key]
        chain = reference_chain(steps, by_step, times, window, new)
        if chain:
            yield index, key, tuple(facts[p].id for p in chain)


# -- zen-engine and business-rules ------------------------------------------------------
def zen_contender(
    name: str,
    how: str,
    specs,
    *,
    layout: str,
    call: str,
    loader: str = "static",
    fields: dict | None = None,
    batch: int = 250,
) -> Contender:
    """zen-engine on the same rules. ``loader="callback"`` gives ZenEngine a Python function
    returning the JDM text: zen calls it, parses the text and compiles the table on every
    evaluation. ``loader="static"`` gives it the JDM once (``{"type": "static", ...}``): parsed
    and compiled once, as a deployed decision would be. ``fields`` (fact type -> the fields the
    rules read) trims each event to those, as the raw durable_rules loop's "rule fields only"."""

    def make():
        import zen

        from bench.others import zen_content_json

        content = zen_content_json(specs, layout=layout)
        if loader == "static":
            engine = zen.ZenEngine({"loader": {"type": "static", "content": {"pack": json.loads(content)}}})
        else:
            engine = zen.ZenEngine({"loader": lambda key: content})

        if fields is None:

            def context(fact) -> dict:
                return {**fact.data, "type": fact.type}
        else:

            def context(fact) -> dict:
                document = {"type": fact.type}
                data = fact.data
                for name in fields.get(fact.type, ()):
                    value = data.get(name)
                    if value is not None:
                        document[name] = value
                return document

        if call == "engine":

            def run(chunk, offset):
                evaluate = engine.evaluate
                return [evaluate("pack", context(fact)) for fact, _ in chunk]
        elif call == "decision":
            decision = engine.create_decision(content)

            def run(chunk, offset):
                evaluate = decision.evaluate
                return [evaluate(context(fact)) for fact, _ in chunk]
        else:

            def run(chunk, offset):
                out = []
                for start in range(0, len(chunk), batch):
                    requests = [{"key": "pack", "context": context(fact)} for fact, _ in chunk[start : start + batch]]
                    out.extend(item["data"] for item in engine.evaluate_batch(requests))
                return out

        def fired(responses, offset):
            return (
                (offset + index, row["rule"]) for index, response in enumerate(responses) for row in response["result"]
            )

        return run, fired, lambda: None

    return Contender(name, how, "zen", make)


def business_rules_contender(name: str, how: str, specs) -> Contender:
    def make():
        from business_rules import run_all

        from bench.others import business_rules_setup

        rule_list, Variables, Actions = business_rules_setup(specs)

        def run(chunk, offset):
            fired = []
            for index, (fact, _) in enumerate(chunk):
                actions = Actions()
                run_all(
                    rule_list=rule_list,
                    defined_variables=Variables({**fact.data, "type": fact.type}),
                    defined_actions=actions,
                    stop_on_first_trigger=False,
                )
                fired.extend((offset + index, rule) for rule in actions.fired)
            return fired

        return run, (lambda out, offset: out), lambda: None

    return Contender(name, how, "business-rules", make)


# -- sections ---------------------------------------------------------------------------
def section_a(singles, facts, repeats: int) -> list[Row]:
    from rules.internal.compiler import ruleset_compile
    from rules.registry import registry
    from rules.services import ruleset_publish

    compiled = ruleset_compile(singles, catalog=registry)
    trimmed = document_trimmer(dict(compiled.single_fields))
    items = [(fact, ()) for fact in facts]
    contenders = [
        *[
            evaluator_contender(
                f"adapter Evaluator.evaluate_many, batch {size}",
                f"rules.evaluation.Evaluator(specs=one-event rules).evaluate_many(items), {size} events a call",
                singles,
                batch=size,
            )
            for size in BATCH_SIZES
        ],
        evaluator_contender(
            "adapter Evaluator.evaluate_many, 1 event a call",
            "Evaluator.evaluate_many([(event, ())]) for each event",
            singles,
            batch=None,
        ),
        published_contender(
            "adapter facts_evaluate_many, batch 250 (published)",
            "rules.evaluation.facts_evaluate_many(items=250 events), live version published in the "
            "temporary db (one version query a call)",
            batch=250,
        ),
        published_contender(
            "adapter facts_evaluate, 1 event a call (published)",
            "rules.evaluation.facts_evaluate(fact=event), one version query a call",
            batch=None,
        ),
        raw_single_contender(
            "raw C loop, 1 event a call, event as sent",
            "create_ruleset(single_json) once; per event assert_fact, start_action/"
            "complete_and_start_action draining with json.loads, retract_fact; the whole event",
            compiled.single_json,
            document_as_sent,
            batch=None,
        ),
        raw_single_contender(
            "raw C loop, 1 event a call, rule fields only",
            "same loop, the event trimmed to the fields the rules read",
            compiled.single_json,
            trimmed,
            batch=None,
        ),
        raw_single_contender(
            "raw C loop, batch 250, rule fields only",
            "assert_facts of 250 trimmed events in the one sid, drain, retract_facts",
            compiled.single_json,
            trimmed,
            batch=250,
        ),
        zen_contender(
            "zen-engine ZenEngine.evaluate, 1 event a call",
            "the old layout: ZenEngine(loader=a Python function returning the JDM text).evaluate(key, event): "
            "the text is parsed and the table compiled on every call; decision table, hit policy collect, "
            "one row per rule, each cell the rule's whole condition; the whole event",
            singles,
            layout="expression",
            call="engine",
            loader="callback",
        ),
        zen_contender(
            "zen-engine ZenEngine.evaluate, static loader, event as sent",
            "ZenEngine(loader={type: static, content: {key: JDM}}).evaluate(key, event): parsed and "
            "compiled once; same table; the whole event",
            singles,
            layout="expression",
            call="engine",
        ),
        zen_contender(
            ZEN_FAST,
            "the fastest faithful layout found: static loader, same table, the event trimmed to the fields "
            "the rules read (a flat dict, as the raw C loop's)",
            singles,
            layout="expression",
            call="engine",
            fields=dict(compiled.single_fields),
        ),
        zen_contender(
            "zen-engine static loader, column-per-field table, rule fields only",
            "same, the table laid out with a column per field (unary tests such as '< 5')",
            singles,
            layout="columns",
            call="engine",
            fields=dict(compiled.single_fields),
        ),
        zen_contender(
            "zen-engine ZenDecision.evaluate, 1 event a call",
            "ZenEngine().create_decision(JDM).evaluate(event), same table, rule fields only (ZenDecision "
            "does not keep the compiled table between calls)",
            singles,
            layout="expression",
            call="decision",
            fields=dict(compiled.single_fields),
        ),
        zen_contender(
            "zen-engine ZenEngine.evaluate_batch, batch 250",
            "ZenEngine(static loader).evaluate_batch(250 requests), same table, rule fields only",
            singles,
            layout="expression",
            call="batch",
            fields=dict(compiled.single_fields),
        ),
        business_rules_contender(
            "business-rules run_all, 1 event a call",
            "business_rules.run_all(rules, Variables(event), Actions()) for each event (generated from the same specs)",
            singles,
        ),
    ]
    print(f"\n(a) {len(singles)} one-event rules, {len(facts):,} events; best of {repeats} passes", flush=True)
    ruleset_publish(specs=singles, comment="bench: one-event rules")
    return measure_all(contenders, items, repeats=repeats, chunk=1000, warm=1000)


def section_b(specs, items, repeats: int) -> list[Row]:
    from rules.internal.compiler import ruleset_compile
    from rules.registry import registry
    from rules.services import ruleset_publish

    compiled = ruleset_compile(specs, catalog=registry)
    with_facts = evaluations_fired_with_facts
    contenders = [
        evaluator_contender(
            "adapter Evaluator.evaluate_many, 1 evaluation a call",
            "Evaluator(specs=pack).evaluate_many([(event, history)]) for each evaluation (no db)",
            specs,
            batch=None,
            fired=with_facts,
        ),
        published_contender(
            "adapter facts_evaluate, 1 evaluation a call (published)",
            "rules.evaluation.facts_evaluate(fact=event, history=history), one version query a call",
            batch=None,
            fired=with_facts,
        ),
        *[
            published_contender(
                f"adapter facts_evaluate_many, batch {size} (published)",
                f"facts_evaluate_many(items={size} (event, history) pairs)",
                batch=size,
                fired=with_facts,
            )
            for size in PATTERN_BATCH_SIZES
        ],
        raw_pattern_contender(
            "raw C loop, 1 evaluation a call, events as sent",
            "the product's compiled rules: one-event ruleset assert_facts([event]), drain "
            "(json.loads), retract_facts; pattern-step ruleset (one-fact rules key#step) "
            "assert_facts(history in the window + event, time order), drain (json.loads), "
            "retract_facts; no chaining; whole events",
            compiled,
            document_as_sent,
        ),
        raw_pattern_contender(
            "raw C loop, 1 evaluation a call, rule fields only",
            "same loop, each event trimmed to the fields its ruleset's rules read (as the adapter does)",
            compiled,
            document_trimmer(dict(compiled.single_fields)),
            document_trimmer(dict(compiled.pattern_fields)),
        ),
    ]
    patterns = [s["key"] for s in specs if s["enabled"] and s["pattern"] != "single"]
    history = len(items[0][1]) if items else 0
    print(
        f"\n(b) whole pack ({len(specs)} rules; patterns: {', '.join(patterns)}), {len(items):,} evaluations "
        f"x {history} history events; best of {repeats} passes",
        flush=True,
    )
    ruleset_publish(specs=specs, comment="bench: whole pack")
    return measure_all(contenders, items, repeats=repeats, chunk=100, warm=200)


# -- report -----------------------------------------------------------------------------
def rate_text(row: Row) -> str:
    if row.outcome.ok:
        if row.crashes:
            passes = len(row.crashes) + len(row.outcome.passes)
            return f"{fmt_rate(row.rate)} (CRASHED in {len(row.crashes)} of {passes} passes: {row.crashes[0]})"
        return fmt_rate(row.rate)
    done, _ = row.outcome.progress
    kind = row.outcome.error.splitlines()[0]
    if done:
        return f"CRASHED ({kind}) after {done:,}; {fmt_rate(row.rate)}/s until then"
    return f"FAILED ({kind})"


def firings_check(rows: list[Row], reference: Row) -> list[str]:
    warnings = []
    if not reference.outcome.ok:
        return [f"WARNING: the reference ({reference.contender.name}) did not finish: firings not compared."]
    for row in rows:
        if not row.outcome.ok or row.fired == reference.fired:
            continue
        missing = sorted(reference.fired - row.fired)[:4]
        extra = sorted(row.fired - reference.fired)[:4]
        warnings.append(
            f"WARNING: {row.contender.name}: {len(row.fired):,} firings, reference "
            f"{len(reference.fired):,}; missing e.g. {missing}; extra e.g. {extra}"
        )
    return warnings


def section_table(rows: list[Row], title: str, reference: Row) -> str:
    lines = []
    for row in rows:
        ratio = row.rate / reference.rate if row.rate and reference.rate else None
        lines.append(
            [
                row.contender.name,
                rate_text(row),
                len(row.fired) if row.outcome.ok else "–",
                fmt_ratio(ratio),
                row.contender.how,
            ]
        )
    return table(
        ["engine / call", "evaluations/s", "firings", f"vs {reference.contender.name}", "what produced it"],
        lines,
        title=title,
    )


def find(rows: list[Row], name: str) -> Row:
    return next(r for r in rows if r.contender.name == name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--facts", type=int, default=20_000)
    parser.add_argument("--evaluations", type=int, default=3_000)
    parser.add_argument("--history", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time each pass by the child's CPU time (time.process_time), not the wall clock: for a busy machine",
    )
    args = parser.parse_args(argv)
    global clock
    clock = time.process_time if args.cpu_time else time.perf_counter
    timing = "CPU time of each child (--cpu-time)" if args.cpu_time else "wall clock"

    rss_start = rss_mb()
    db = django_setup("engine")
    from rules.services import ruleset_check

    specs = ruleset_check(pack_specs())
    singles = [s for s in specs if s["enabled"] and s["pattern"] == "single"]
    print(
        f"bench.engine: {machine_line()}; load average {os.getloadavg()[0]:.2f}; durable-rules "
        f"{package_version('durable-rules')}, zen-engine {package_version('zen-engine')}, business-rules "
        f"{package_version('business-rules')}"
    )
    print(f"temporary database {db}; rule pack: {len(specs)} rules ({len(singles)} one-event); seed {SEED}")
    print(f"timing: {timing}")
    facts = single_facts(args.facts)
    gc.collect()
    rss_ready = rss_mb()
    rows_a = section_a(singles, facts, args.repeats)
    del facts
    items = history_items(args.evaluations, history=args.history)
    gc.collect()
    rss_ready_b = rss_mb()
    rows_b = section_b(specs, items, args.repeats)
    gc.collect()
    rss_end = rss_mb()

    ref_a = find(rows_a, "adapter Evaluator.evaluate_many, batch 250")
    raw_a = find(rows_a, "raw C loop, 1 event a call, event as sent")
    ref_b = find(rows_b, "raw C loop, 1 evaluation a call, rule fields only")
    fire_ref_b = ref_b  # the raw loop's engine hits, chained by the brute-force reference_chain
    warnings = firings_check(rows_a, ref_a) + firings_check(rows_b, fire_ref_b)

    print(
        section_table(rows_a, f"(a) one-event rules: {len(singles)} rules, {args.facts:,} events, seed {SEED}", raw_a)
    )
    print(
        "Firings are distinct (event, rule) pairs. The raw loop's durable_rules messages: an $or rule "
        "fires once per true branch; the adapter and this table count one firing per rule."
    )
    print(
        section_table(
            rows_b,
            f"(b) whole pack, {args.evaluations:,} evaluations x {args.history} history events, seed {SEED + 1}",
            ref_b,
        )
    )
    print(
        f"Firings in (b) are (evaluation, rule, fact ids chained) and are compared against: "
        f"{fire_ref_b.contender.name}, its step hits chained after the timed pass by a brute-force "
        f"plain-Python reference (bench.engine.reference_chain), independent of the adapter's best_chain."
    )

    adapters_a = [r for r in rows_a if r.contender.group == "adapter" and r.outcome.ok]
    best_a = max(adapters_a, key=lambda r: r.rate) if adapters_a else None
    zen_best = max(
        (r for r in rows_a if r.contender.group == "zen" and r.outcome.ok), key=lambda r: r.rate, default=None
    )
    adapter_b = find(rows_b, "adapter Evaluator.evaluate_many, 1 evaluation a call")

    def ratio(a: Row | None, b: Row | None) -> float | None:
        return a.rate / b.rate if a and b and a.rate and b.rate else None

    goal_a = bool(best_a and zen_best and best_a.rate >= zen_best.rate)
    overhead_b = ratio(ref_b, adapter_b)
    goal_b = bool(adapter_b.outcome.ok and ref_b.outcome.ok and overhead_b is not None and overhead_b <= 1.5)
    stable_b = all(r.outcome.ok and not r.crashes for r in rows_b if r.contender.group == "adapter")
    crashed = [r for r in rows_a + rows_b if r.crashes or not r.outcome.ok]
    goals = [
        [
            "(a) adapter (best batched) >= zen-engine (best call)",
            f"{fmt_rate(best_a.rate if best_a else None)} vs {fmt_rate(zen_best.rate if zen_best else None)}/s",
            fmt_ratio(ratio(best_a, zen_best)),
            "MET" if goal_a else "MISSED",
            f"{best_a.contender.name if best_a else '–'} vs {zen_best.contender.name if zen_best else '–'}",
        ],
        [
            "(b) adapter time <= 1.5 x raw loop time",
            f"{rate_text(adapter_b)} vs {rate_text(ref_b)}/s",
            fmt_ratio(overhead_b),
            "MET"
            if goal_b
            else ("NOT MEASURABLE (crash)" if not (adapter_b.outcome.ok and ref_b.outcome.ok) else "MISSED"),
            "raw loop (rule fields only) / Evaluator, 1 evaluation a call",
        ],
        [
            "(b) the adapter runs the whole pack without crashing",
            "",
            "",
            "YES" if stable_b else "NO (SIGSEGV)",
            "every adapter pass of (b); the product no longer lets durable_rules join facts "
            "(python -m bench.crash_repro; --join shows the upstream crash)",
        ],
    ]
    print(table(["goal", "figures", "ratio", "result", "measured on"], goals, title="Goals"))
    rss_rows = [
        ["parent: process start", f"{rss_start:.1f}"],
        ["parent: Django set-up, rules and (a)'s events in memory", f"{rss_ready:.1f}"],
        ["parent: (b)'s evaluations in memory", f"{rss_ready_b:.1f}"],
        ["parent: end", f"{rss_end:.1f}"],
    ]
    rss_rows += [
        [f"child after: {r.contender.name}", f"{r.outcome.rss_mb:.1f}" if r.outcome.rss_mb else "–"]
        for r in rows_a + rows_b
    ]
    print(
        table(["when", "RSS (MB)"], rss_rows, title="Memory (resident set size; each contender runs in a forked child)")
    )
    for row in rows_a + rows_b:
        if row.outcome.extra.get("inconsistent"):
            warnings.append(f"WARNING: {row.contender.name} gave different firings in different passes.")
    for row in crashed:
        warnings.append(
            f"WARNING: {row.contender.name} failed in {len(row.crashes)} of {args.repeats} passes: "
            f"{', '.join(row.crashes) or row.outcome.error}"
        )
    for warning in warnings:
        print(warning)
    if not warnings:
        print(
            "\nFirings: every contender that finished gave the same firings as the reference: (event, rule) "
            "in (a); (evaluation, rule, fact ids chained) in (b)."
        )

    def pick(row: Row | None) -> dict[str, Any] | None:
        if row is None:
            return None
        return {
            "name": row.contender.name,
            "how": row.contender.how,
            "rate": row.rate,
            "ok": row.outcome.ok,
            "text": rate_text(row),
            "firings": len(row.fired),
        }

    summary = {
        "machine": machine_line(),
        "timing": timing,
        "facts": args.facts,
        "evaluations": args.evaluations,
        "history": args.history,
        "seed": SEED,
        "rules": len(specs),
        "single_rules": len(singles),
        "a": {r.contender.name: pick(r) for r in rows_a},
        "b": {r.contender.name: pick(r) for r in rows_b},
        "best_adapter_a": pick(best_a),
        "best_zen_a": pick(zen_best),
        "goals": {"a": goal_a, "b": goal_b, "b_stable": stable_b, "b_ratio": overhead_b},
        "rss_mb": {"start": rss_start, "ready": rss_ready, "end": rss_end},
        "warnings": warnings,
    }
    save_result("engine", summary)
    print("\n" + summary_markdown(summary))
    return 0


def summary_markdown(s: dict) -> str:
    a, b = s["a"], s["b"]

    def line(workload: str, label: str, entry: dict | None, note: str = "") -> list[str]:
        if entry is None:
            return [workload, label, "–", note]
        return [workload, label, entry["text"], note or entry["how"]]

    rows = [
        line(
            f"(a) {s['single_rules']} one-event rules, {s['facts']:,} events",
            "our adapter, batched",
            s["best_adapter_a"],
            s["best_adapter_a"]["name"] if s["best_adapter_a"] else "",
        ),
        line(
            "",
            "our adapter, one event a call",
            a.get("adapter facts_evaluate, 1 event a call (published)"),
            "facts_evaluate on the published version",
        ),
        line(
            "",
            "raw durable_rules C loop",
            a.get("raw C loop, 1 event a call, event as sent"),
            "assert_fact / drain (json.loads) / retract_fact",
        ),
        line(
            "",
            "raw durable_rules C loop, batched",
            a.get("raw C loop, batch 250, rule fields only"),
            "assert_facts of 250 / drain / retract_facts",
        ),
        line(
            "",
            "zen-engine 2 (GoRules), at its best",
            a.get(ZEN_FAST),
            "ZenEngine.evaluate, static loader (JDM compiled once), decision table (collect), rule fields only",
        ),
        line(
            "",
            "zen-engine 2 (GoRules), old layout",
            a.get("zen-engine ZenEngine.evaluate, 1 event a call"),
            "ZenEngine.evaluate, loader callback returning the JDM text (parsed every call), whole event",
        ),
        line("", "business-rules (venmo)", a.get("business-rules run_all, 1 event a call"), "run_all per event"),
        line(
            f"(b) whole pack, {s['history']} history events each",
            "our adapter",
            b.get("adapter Evaluator.evaluate_many, 1 evaluation a call"),
            "Evaluator, one evaluation a call",
        ),
        line(
            "",
            "our adapter, published version",
            b.get("adapter facts_evaluate, 1 evaluation a call (published)"),
            "facts_evaluate (includes the live-version query)",
        ),
        line(
            "",
            "raw durable_rules C loop",
            b.get("raw C loop, 1 evaluation a call, rule fields only"),
            "assert_facts(new; history + new to the step rules) / drain / retract_facts, no chaining",
        ),
    ]
    return f"#### Engine, evaluations per second ({s['machine']}; {s['timing']})\n\n" + table(
        ["workload", "engine", "evaluations/s", "how"], rows
    )


if __name__ == "__main__":
    sys.exit(main())
