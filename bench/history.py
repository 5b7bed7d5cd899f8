"""A gym's history of events as a file for ``manage.py importevents``, and how long importing it takes.

    python -m bench.history --lines 50000 --bad 0.01 [--format csv] [--members 500] > /tmp/h.jsonl
    python -m bench.history --lines 50000 --bad 0.01 --time

The first writes the file to stdout: runs, pain reports, cross-training and a profile per
member, over the last 20 weeks, in time order across members (as a gym's export would be),
with a share of bad lines of every kind the import reports (not JSON, an unknown type, a value
out of range, a missing field, an empty line, a known id with other content). The same seed
gives the same file.

With ``--time`` it writes the file to a temporary directory instead, and imports it with
``importevents`` into a fresh temporary SQLite database (migrated, default rule pack, one gym),
printing the time the import took and its summary. Nothing of the developer's is touched.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import SEED, cross_training_data, django_setup, pain_report_data, profile_data, run_data

SPAN = dt.timedelta(weeks=20)
OFFSETS = (0, 60, 120, -300, 330)
BAD_KINDS = ("not_json", "unknown_type", "out_of_range", "missing_field", "empty", "conflict")


def events(rng: random.Random, *, lines: int, members: int) -> Iterator[dict[str, Any]]:
    """``lines`` good events of ``members`` members, in time order."""
    end = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=1)
    step = SPAN / max(lines, 1)
    offset = {m: dt.timezone(dt.timedelta(minutes=rng.choice(OFFSETS))) for m in range(members)}
    painful = {m: rng.random() < 0.2 for m in range(members)}
    profiled: set[int] = set()
    for n in range(lines):
        m = rng.randrange(members)
        at = (end - SPAN + step * n).astimezone(offset[m])
        if m not in profiled:
            profiled.add(m)
            kind, data = "profile", profile_data(rng)
        else:
            kind = rng.choices(("run", "pain_report", "cross_training"), (70, 20, 10))[0]
            if kind == "run":
                data = run_data(rng, painful=painful[m])
            elif kind == "pain_report":
                data = pain_report_data(rng, painful=painful[m])
            else:
                data = cross_training_data(rng)
        yield {
            "external_id": f"h-{n:07d}",
            "member": f"member-{m:04d}",
            "type": kind,
            "occurred_at": at.isoformat(timespec="seconds"),
            "data": data,
        }


def spoiled(rng: random.Random, event: dict[str, Any]) -> dict[str, Any] | str:
    """The event made bad in one of the ways an import reports (a str: a line that is not an event)."""
    kind = rng.choice(BAD_KINDS)
    if kind == "not_json":
        return json.dumps(event)[:-7]
    if kind == "empty":
        return ""
    bad = {**event, "data": dict(event["data"])}
    if kind == "unknown_type":
        bad["type"] = "swim"
    elif kind == "out_of_range":
        bad["type"], bad["data"] = "pain_report", {"pain": 11}
    elif kind == "missing_field":
        bad["type"], bad["data"] = "cross_training", {"duration_min": 30}
    else:  # the id of the first event again, with other content
        bad["external_id"] = "h-0000000"
    return bad


def history_lines(*, lines: int, bad: float, members: int, format: str, seed: int = SEED) -> Iterator[str]:
    rng = random.Random(seed)
    columns: list[str] = []
    if format == "csv":
        from coaching.catalog import FACT_TYPES

        fields = sorted({spec.name for _label, specs in FACT_TYPES.values() for spec in specs})
        columns = ["external_id", "member", "type", "occurred_at", *fields]
        yield ",".join(columns) + "\n"
    for event in events(rng, lines=lines, members=members):
        line: dict[str, Any] | str = spoiled(rng, event) if rng.random() < bad else event
        if isinstance(line, str):
            yield line + "\n"
        elif format == "csv":
            out = io.StringIO()
            cells = {**line, **line["data"]}
            csv.writer(out).writerow(["" if cells.get(c) is None else cells[c] for c in columns])
            yield out.getvalue()
        else:
            yield json.dumps(line) + "\n"


def import_timed(path: Path, *, lines: int) -> None:
    django_setup("history")  # a fresh temporary database, migrated
    from django.core.management import call_command

    call_command("installpack", stdout=io.StringIO())
    call_command("creategym", "bench", stdout=io.StringIO())
    started = time.perf_counter()
    out = io.StringIO()
    call_command("importevents", str(path), "--gym", "bench", stdout=out)
    seconds = time.perf_counter() - started
    print(out.getvalue().splitlines()[-1])
    print(f"importevents: {lines} lines in {seconds:.1f} s ({lines / seconds:.0f} lines/s) on SQLite")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--bad", type=float, default=0.01, help="share of bad lines (0.01 = 1%%)")
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    parser.add_argument("--time", action="store_true", help="import it into a temporary database and time it")
    args = parser.parse_args(argv)
    generated = history_lines(lines=args.lines, bad=args.bad, members=args.members, format=args.format)
    if not args.time:
        sys.stdout.writelines(generated)
        return
    with tempfile.TemporaryDirectory(prefix="bench-history-") as folder:
        path = Path(folder) / f"history.{args.format}"
        with path.open("w", encoding="utf-8") as out:
            out.writelines(generated)
        import_timed(path, lines=args.lines)


if __name__ == "__main__":
    main()
