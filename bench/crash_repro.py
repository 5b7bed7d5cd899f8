"""Reproduce the durable_rules crash on multi-fact patterns (see the benchmark report).

    python -m bench.crash_repro [--evaluations 3000] [--passes 3] [--prototype]

Evaluates the default rule pack over seeded members with 30 history events each, through
``rules.services.Evaluator`` (the product's adapter), in a child process, and reports
whether that process died. Exit status 0: no crash; 1: the child crashed (SIGSEGV).

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
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--evaluations", type=int, default=3000)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--prototype", action="store_true", help="use bench/prototype.py (the proposed fix) instead")
    args = parser.parse_args(argv)

    from bench.common import django_setup, history_items, pack_specs

    django_setup("crash")
    from django.db import connections

    from rules.services import Evaluator, ruleset_check

    specs = ruleset_check(pack_specs())
    items = history_items(args.evaluations)
    connections.close_all()
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        if args.prototype:
            from bench.prototype import PrototypeEvaluator

            evaluator = PrototypeEvaluator(specs)
        else:
            evaluator = Evaluator(specs=specs)
        for _ in range(args.passes):
            for item in items:
                evaluator.evaluate_many([item])
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    what = "bench/prototype.py" if args.prototype else "rules.services.Evaluator"
    total = args.evaluations * args.passes
    if os.WIFSIGNALED(status):
        print(f"CRASH: {what} died with {signal.Signals(os.WTERMSIG(status)).name} within {total:,} evaluations "
              f"(whole pack, 30 history events each)")
        return 1
    print(f"no crash: {what}, {total:,} evaluations (exit status {os.WEXITSTATUS(status)})")
    return 0 if os.WEXITSTATUS(status) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
