"""The durable_rules crash on multi-fact patterns, and that the product's adapter is clear of it.

    python -m bench.crash_repro [--runs 10] [--evaluations 500] [--passes 3]
    python -m bench.crash_repro --join [--runs 10] ...     # the upstream bug (crashes)
    python -m bench.crash_repro --minimal LOOPS            # the smallest trigger, for valgrind

Default: evaluates the default rule pack over seeded members with 30 history events each,
through ``rules.evaluation.Evaluator`` (the product's adapter), in --runs fresh processes
(each with its own PYTHONHASHSEED, so each lays out memory differently: whether a
corruption reaches unmapped memory depends on that), and counts the processes that died.
Expected: 0 crashes, since the product compiles every pattern step as a one-fact rule and
chains the steps in Python (rules.internal.compiler, rules.internal.chains).

``--join`` DEMONSTRATES THE UPSTREAM BUG, not the product: the same workload straight on
durable_rules' C core with the pack's patterns compiled as durable join rules (the form
the product used before: one rule per pattern, its steps joined on ``_g``, ordered on
``_o``, the window on ``_t``), asserted, drained and retracted as the adapter used to. Seen
here before the fix: 1 to 3 of 6 processes died with SIGSEGV.

Exit status 0: no process crashed; 1: at least one did.

Cause, in durable_rules 2.0.28's C core: when an action whose frame binds several facts is
completed (``complete_and_start_action``), ``deleteCurrentAction`` frees the frame but
leaves each fact's location record pointing at it, with ``isDispatching`` still set. The
later ``retract_facts`` finds that record, gets ERR_NODE_DISPATCHING from
``deleteActionFrame`` and calls ``deleteMessageFromFrame``, which zeroes the fact's slot
without lowering ``messageCount``; for the frame's second fact the loop
``for (i = 0, c = 0; c < frame->messageCount; ++i)`` then runs past ``messages[16]`` into
whatever memory follows (valgrind: "Conditional jump or move depends on uninitialised
value(s)" in deleteMessageFromFrame; gdb: SIGSEGV in deleteMessageFromFrame <-
handleDeleteMessage <- retractFacts). One-fact rules are not affected.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys


def join_ruleset_json(compiled) -> str:
    """The pack's patterns as durable_rules join rules (the pre-fix compiler's output), built
    from the product's compiled step rules and chains: step j's conditions, plus the same
    evaluation (``_g``) and a later place in time order (``_o``) than step j-1, and for the
    last step the window from the first (``_t``)."""
    step_rules = json.loads(compiled.pattern_json)
    rules = {}
    for key, (steps, window_seconds) in compiled.chains.items():
        chain = []
        for position, step in enumerate(steps):
            terms = list(step_rules[f"{key}#{step}"]["all"][0]["m"]["$and"])
            if position:
                terms += [{"_g": {"s0": "_g"}}, {"$gt": {"_o": {f"s{position - 1}": "_o"}}}]
                if position == len(steps) - 1:
                    terms.append({"$lte": {"_t": {"$add": {"$l": {"s0": "_t"}, "$r": window_seconds}}}})
            chain.append({f"s{position}": {"$and": terms}})
        rules[key] = {"all": chain}
    return json.dumps(rules, sort_keys=True)


def join_evaluator(specs):
    """evaluate_many for the --join mode: only the patterns, joined by durable_rules itself."""
    import durable_rules_engine as dre

    from rules.internal.compiler import ruleset_compile
    from rules.internal.facts import SCRATCH_SID, projector
    from rules.registry import registry

    compiled = ruleset_compile(specs, catalog=registry)
    handle = dre.create_ruleset("crash_repro_join", join_ruleset_json(compiled))
    projectors = {t: projector(f, compiled.date_fields) for t, f in compiled.pattern_fields.items()}
    window, history_types = compiled.history_window, compiled.history_types

    def evaluate_many(items) -> int:
        documents = []
        for index, (fact, history) in enumerate(items):
            if fact.type not in history_types:
                continue
            relevant = [
                h
                for h in history
                if h.type in history_types and h.id != fact.id and abs(h.occurred_at - fact.occurred_at) <= window
            ]
            for position, item in enumerate(sorted([fact, *relevant], key=lambda f: (f.occurred_at, f.id))):
                documents.append(
                    projectors[item.type](
                        {
                            "id": f"{index}.{position}",
                            "sid": SCRATCH_SID,
                            "type": item.type,
                            "_g": index,
                            "_o": position,
                            "_t": item.occurred_at.timestamp(),
                        },
                        item.data,
                    )
                )
        if not documents:
            return 0
        payload = json.dumps(documents, separators=(",", ":"))
        fired = 0
        dre.assert_facts(handle, payload)
        started = dre.start_action(handle)
        if started:
            _, message, state = started
            while message:
                fired += 1
                message = dre.complete_and_start_action(handle, state)
        dre.retract_facts(handle, payload)
        return fired

    return evaluate_many


def child(evaluations: int, passes: int, join: bool) -> int:
    from bench.common import django_setup, history_items, pack_specs

    django_setup("crash")
    from rules.evaluation import Evaluator
    from rules.services import ruleset_check

    specs = ruleset_check(pack_specs())
    items = history_items(evaluations)
    evaluate_many = join_evaluator(specs) if join else Evaluator(specs=specs).evaluate_many
    for _ in range(passes):
        for item in items:
            evaluate_many([item])
    return 0


def minimal(loops: int) -> int:
    """The smallest trigger, for valgrind: a two-fact join fires, the action is completed, both
    facts are retracted. ``PYTHONMALLOC=malloc valgrind python -m bench.crash_repro --minimal 3``
    reports "Conditional jump or move depends on uninitialised value(s)" in deleteMessageFromFrame."""
    import durable_rules_engine as dre

    rules = {"pair": {"all": [{"a": {"t": "x"}}, {"b": {"$and": [{"t": "y"}, {"g": {"a": "g"}}]}}]}}
    handle = dre.create_ruleset("crash_repro_minimal", json.dumps(rules))
    payload = json.dumps([{"id": "1", "sid": "0", "t": "x", "g": 1}, {"id": "2", "sid": "0", "t": "y", "g": 1}])
    for _ in range(loops):
        dre.assert_facts(handle, payload)
        started = dre.start_action(handle)
        if started:
            _, message, state = started
            while message:
                message = dre.complete_and_start_action(handle, state)
        dre.retract_facts(handle, payload)
    print(
        f"minimal (upstream durable_rules bug): {loops} join/complete/retract cycles done "
        "(run it under valgrind to see the bad reads)"
    )
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--evaluations", type=int, default=500)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument(
        "--join",
        action="store_true",
        help="demonstrate the UPSTREAM durable_rules bug: the pack's patterns as durable join rules "
        "on the raw C core (what the product no longer does)",
    )
    parser.add_argument(
        "--minimal", type=int, metavar="LOOPS", help="only the two-fact trigger of the upstream bug, for valgrind"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.minimal:
        return minimal(args.minimal)
    if args.child:
        return child(args.evaluations, args.passes, args.join)

    what = (
        "UPSTREAM BUG DEMO: durable_rules join rules on the raw C core (not the product)"
        if args.join
        else "the product's adapter, rules.evaluation.Evaluator"
    )
    command = [
        sys.executable,
        "-m",
        "bench.crash_repro",
        "--child",
        "--evaluations",
        str(args.evaluations),
        "--passes",
        str(args.passes),
    ] + (["--join"] if args.join else [])
    print(f"{what}: {args.runs} processes", flush=True)
    crashed = 0
    for seed in range(args.runs):
        env = dict(os.environ, PYTHONHASHSEED=str(seed))
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode < 0:
            crashed += 1
            outcome = signal.Signals(-done.returncode).name
        else:
            outcome = f"exit status {done.returncode}"
            if done.returncode:
                outcome += f": {done.stderr.strip().splitlines()[-1]}"
        print(f"  PYTHONHASHSEED={seed}: {outcome}", flush=True)
    total = args.evaluations * args.passes
    print(
        f"{what}: {crashed} of {args.runs} processes crashed, each running {total:,} evaluations "
        f"(whole pack, 30 history events each)"
    )
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
