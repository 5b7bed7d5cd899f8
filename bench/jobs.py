"""Heavy clinicians' work spread over queue workers: a simulation and a re-evaluation of a chain.

    python -m bench.jobs [--events 1000000] [--members 10000] [--workers 2] [--days 120]

Stores ``--events`` events of ``--members`` members over the last ``--days`` days in a database
of its own on the PostgreSQL server ``bench.api`` finds (``BENCH_DATABASE_URL`` or a local
cluster; a chain's workers on several hosts share one), or with ``--sqlite`` or no server on a
temporary SQLite file, with the default rule pack live and a draft that changes a threshold. Then, as a
clinician's buttons would, it starts a simulation of the draft (in ``--workers`` parts, or in
parts of at most 100,000 events when that makes more) and, after publishing it, a re-evaluation
of every member in ``--workers`` parts; ``--workers`` processes of ``manage.py worker --batch``
take the parts. Printed: wall time from the start to the combined
result, and the peak memory (resident set) of each worker process, with the goals.

Events are written straight to the database with the product's own models and figures; a first
re-evaluation, spread over the workers too, judges them all and writes their advice (printed, no
goal: every piece of advice is new). The timed re-evaluation follows a publish that changes one
threshold, as a clinician's would. Nothing of the developer's is touched.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import subprocess
import sys
import threading
import time
from typing import Any

from bench.common import (
    ROOT,
    SEED,
    cross_training_data,
    machine_line,
    pain_report_data,
    profile_data,
    run_data,
    save_result,
    table,
    temp_sqlite_path,
)
from bench.servers import PostgresDatabases, postgres_server

BATCH = 5000
GOALS = {"simulation": (120.0, 500.0), "re-evaluation": (180.0, 500.0)}  # seconds, MB per process


def setup_database(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-" + "x" * 50)
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    call_command("installpack", verbosity=0)


def store_events(*, events: int, members: int, days: int) -> None:
    """``events`` events over ``members`` members and the last ``days`` days, without advice."""
    from coaching.figures import figures_timeline
    from coaching.models import Event, Member
    from coaching.services import event_content_hash, gym_create
    from coaching.validation import CleanEvent

    rng = random.Random(SEED)
    gym, _key = gym_create(name="Bench chain")
    stored = Member.objects.bulk_create(
        [Member(gym=gym, external_id=f"m-{n}") for n in range(members)], batch_size=BATCH
    )
    if stored[0].pk is None:  # databases that do not return ids from a bulk insert
        stored = list(Member.objects.filter(gym=gym).order_by("pk"))
    end = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    span = dt.timedelta(days=days)
    each = events // members
    painful = [rng.random() < 0.2 for _ in range(members)]
    batch: list[Any] = []
    written = 0
    started = time.monotonic()
    for index, member in enumerate(stored):
        mine: list[Any] = []
        offset = dt.timezone(dt.timedelta(minutes=rng.choice((0, 60, -300, 330))))
        moments = sorted(end - span * rng.random() for _ in range(each + (index < events % members)))
        for number, moment in enumerate(moments):
            if number == 0:
                kind, data = "profile", profile_data(rng)
            else:
                kind = rng.choices(("run", "pain_report", "cross_training"), (70, 20, 10))[0]
                data = (
                    run_data(rng, painful=painful[index])
                    if kind == "run"
                    else pain_report_data(rng, painful=painful[index])
                    if kind == "pain_report"
                    else cross_training_data(rng)
                )
            local = moment.astimezone(offset)
            clean = CleanEvent(f"{member.external_id}-e{number}", member.external_id, kind, local, data)
            mine.append(
                Event(
                    gym=gym,
                    member=member,
                    external_id=clean.external_id,
                    type=kind,
                    occurred_at=clean.occurred_at,
                    utc_offset_minutes=int(offset.utcoffset(None).total_seconds() // 60),
                    data=data,
                    content_hash=event_content_hash(clean),
                    evaluated=True,  # else a worker's periodic job would judge them first
                )
            )
        # The figures the product stores with each event, by its own code.
        for event, figures in zip(mine, figures_timeline(mine), strict=True):
            event.figures = figures
        batch.extend(mine)
        if len(batch) >= BATCH:
            Event.objects.bulk_create(batch)
            written += len(batch)
            batch.clear()
            print(f"\r  stored {written:,} events ({time.monotonic() - started:.0f} s)", end="", flush=True)
    if batch:
        Event.objects.bulk_create(batch)
        written += len(batch)
    print(f"\r  stored {written:,} events of {members:,} members in {time.monotonic() - started:.0f} s")


def draft_with_a_change() -> None:
    """The clinician's draft: "stop when it hurts" from pain 4 instead of the pack's value."""
    from rules.models import Rule
    from rules.selectors import rule_spec
    from rules.services import rule_save

    rule = Rule.objects.get(key="pain-stop")
    spec = rule_spec(rule)
    spec["parameters"] = [{**p, "value": 4} if p["name"] == "threshold" else p for p in spec["parameters"]]
    rule_save(spec=spec, rule=rule)


class Peaks(threading.Thread):
    """The largest resident set seen of each process, sampled every 0.2 s."""

    def __init__(self, processes: list[subprocess.Popen]) -> None:
        super().__init__(daemon=True)
        import psutil

        self.watched = [psutil.Process(p.pid) for p in processes]
        self.peaks = [0.0 for _ in processes]
        self.stopped = threading.Event()

    def run(self) -> None:
        import psutil

        while not self.stopped.wait(0.2):
            for index, process in enumerate(self.watched):
                try:
                    rss = process.memory_info().rss + sum(c.memory_info().rss for c in process.children(recursive=True))
                except psutil.Error:  # it has just exited
                    continue
                self.peaks[index] = max(self.peaks[index], rss / 2**20)


def run_on_workers(job: Any, workers: int) -> tuple[float, list[float], Any]:
    """Run ``workers`` worker processes until the job is finished; (seconds, peak MB each, job)."""
    from django.db import connections

    from rules.models import Job

    connections.close_all()
    started = time.monotonic()
    env = {**os.environ, "JOBS_HEARTBEAT_SECONDS": "5"}
    processes = [
        subprocess.Popen(
            [sys.executable, "manage.py", "worker", "--batch"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
        )
        for _ in range(workers)
    ]
    peaks = Peaks(processes)
    peaks.start()
    for process in processes:
        process.wait()
    seconds = time.monotonic() - started
    peaks.stopped.set()
    peaks.join()
    job = Job.objects.get(pk=job.pk)
    return seconds, peaks.peaks, job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--sqlite", action="store_true", help="SQLite even when a PostgreSQL server is found")
    args = parser.parse_args()

    databases = None
    server, how = (None, "--sqlite") if args.sqlite else postgres_server()
    if server is not None:
        databases = PostgresDatabases.empty(server, "jobs")
        url, kind = databases.url(databases.made[-1]), f"PostgreSQL ({how})"
    else:
        url, kind = f"sqlite:///{temp_sqlite_path('jobs')}", f"SQLite ({how})"
    print(f"bench.jobs: {args.events:,} events, {args.members:,} members, {args.workers} workers, {kind}")
    print(f"  {machine_line()}")
    try:
        _bench(url, kind, args)
    finally:
        if databases is not None:
            from django.db import connections

            connections.close_all()
            databases.close()


def _bench(url: str, kind: str, args: argparse.Namespace) -> None:
    setup_database(url)
    os.environ["JOBS_PARTS"] = str(args.workers)
    store_events(events=args.events, members=args.members, days=args.days)

    from coaching.jobs import reevaluate_start
    from coaching.models import Member
    from rules import simulation
    from rules.services import ruleset_publish

    rows, results = [], {}
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=args.days + 1)
    starts = dict.fromkeys(Member.objects.values_list("pk", flat=True), since)
    print("  judging every event once (all advice new) ...")
    results["first judging"] = run_on_workers(reevaluate_start(starts, parts=args.workers), args.workers)
    draft_with_a_change()
    print("  simulating the draft ...")
    results["simulation"] = run_on_workers(
        simulation.simulation_start(days=args.days + 1, parts=args.workers), args.workers
    )
    ruleset_publish(comment="Threshold 4")
    print("  re-evaluating after publishing it ...")
    results["re-evaluation"] = run_on_workers(reevaluate_start(starts, parts=args.workers), args.workers)

    for name, (seconds, peaks, job) in results.items():
        if name not in GOALS:
            rows.append(
                (
                    name,
                    f"{(job.result or {}).get('events', 0):,} events",
                    f"{seconds:.1f} s",
                    ", ".join(f"{p:.0f} MB" for p in peaks),
                    "",
                    "",
                )
            )
            continue
        goal_seconds, goal_mb = GOALS[name]
        met = job.status == "done" and seconds < goal_seconds and max(peaks) < goal_mb
        rows.append(
            (
                name,
                f"{(job.result or {}).get('events', 0):,} events",
                f"{seconds:.1f} s",
                ", ".join(f"{peak:.0f} MB" for peak in peaks),
                f"< {goal_seconds:.0f} s, < {goal_mb:.0f} MB each",
                "met" if met else f"NOT met ({job.get_status_display()})",
            )
        )
    print()
    print(table(("work", "judged", "wall time", "peak memory per worker", "goal", ""), rows))
    save_result(
        "jobs",
        {
            "machine": machine_line(),
            "database": kind,
            "args": vars(args),
            "results": {n: {"seconds": s, "peaks_mb": p, "status": j.status} for n, (s, p, j) in results.items()},
        },
    )


if __name__ == "__main__":
    main()
