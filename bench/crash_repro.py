"""Reproduce the durable_rules crash on multi-fact patterns (see the benchmark report).

    python -m bench.crash_repro [--runs 8] [--evaluations 500] [--passes 3] [--prototype]

Evaluates the default rule pack over seeded members with 30 history events each, through
``rules.services.Evaluator`` (the product's adapter), in --runs fresh processes (each with
its own PYTHONHASHSEED, so each lays out memory differently: whether the corruption
reaches unmapped memory depends on that), and counts the processes that died. Exit status
0: none crashed; 1: at least one did. Seen here: 1 to 3 of 6 runs died with SIGSEGV; make bench's (b) lost 1 of 5 passes of
two adapter contenders the same way.

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
import os
import signal
import subprocess
import sys


def child(evaluations: int, passes: int, prototype: bool) -> int:
    from bench.common import django_setup, history_items, pack_specs

    django_setup("crash")
    from rules.services import Evaluator, ruleset_check

    specs = ruleset_check(pack_specs())
    items = history_items(evaluations)
    if prototype:
        from bench.prototype import PrototypeEvaluator

        evaluator = PrototypeEvaluator(specs)
    else:
        evaluator = Evaluator(specs=specs)
    for _ in range(passes):
        for item in items:
            evaluator.evaluate_many([item])
    return 0


def minimal(loops: int) -> int:
    """The smallest trigger, for valgrind: a two-fact join fires, the action is completed, both
    facts are retracted. ``PYTHONMALLOC=malloc valgrind python -m bench.crash_repro --minimal 3``
    reports "Conditional jump or move depends on uninitialised value(s)" in deleteMessageFromFrame."""
    import json

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
    print(f"minimal: {loops} join/complete/retract cycles done (run it under valgrind to see the bad reads)")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--evaluations", type=int, default=500)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--prototype", action="store_true", help="use bench/prototype.py (the proposed fix) instead")
    parser.add_argument("--minimal", type=int, metavar="LOOPS", help="only the two-fact trigger, for valgrind")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.minimal:
        return minimal(args.minimal)
    if args.child:
        return child(args.evaluations, args.passes, args.prototype)

    what = "bench/prototype.py" if args.prototype else "rules.services.Evaluator"
    command = [sys.executable, "-m", "bench.crash_repro", "--child", "--evaluations", str(args.evaluations),
               "--passes", str(args.passes)] + (["--prototype"] if args.prototype else [])
    crashed = 0
    for seed in range(args.runs):
        env = dict(os.environ, PYTHONHASHSEED=str(seed))
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode < 0:
            crashed += 1
            outcome = signal.Signals(-done.returncode).name
        else:
            outcome = f"exit status {done.returncode}" + (f": {done.stderr.strip().splitlines()[-1]}" if done.returncode else "")
        print(f"  PYTHONHASHSEED={seed}: {outcome}", flush=True)
    total = args.evaluations * args.passes
    print(f"{what}: {crashed} of {args.runs} processes crashed, each running {total:,} evaluations "
          f"(whole pack, 30 history events each)")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
