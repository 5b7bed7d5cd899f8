"""API benchmark: the product against a bare insert-only endpoint, in the same run.

    python -m bench.api [--quick | --full] [--no-postgres] [--import-lines 50000] [...]

Serves the product as ``make run`` does (``manage.py serve --web-concurrency 2 --threads 1
--queue-workers 1``, a SQLite file) and, when a PostgreSQL server is reachable
(``BENCH_DATABASE_URL``, or a local cluster found with ``pg_lsclusters``), as ``make serve``
does (``--web-concurrency 2``, default threads, one queue worker) on PostgreSQL. Beside each,
the same command serves the bare endpoint (bench/bare/: authenticate, validate, insert the
``Event`` row, answer 201; arrays stored row by row) with
``DJANGO_SETTINGS_MODULE=bench.bare.settings``, on a copy of the same database. Both servers
run at once and take turns, workload by workload, with the same events (each on its own
database), so a busy moment of the machine hits both alike.

Workloads (events/s; latency per request, p50 and p99):

1. make run: single posts from 1 client and from 8 clients; arrays of 500;
2. make serve + PostgreSQL: single posts from 16 clients; arrays of 500;
3. ``manage.py importevents FILE --gym bench`` of a JSON Lines file (default 50,000 lines,
   1 % of them bad) on SQLite, twice (the second run must create nothing), against the bare
   import (``python -m bench.bare.importevents``); skipped, with a note, while the command
   does not exist (``manage.py help importevents`` fails);
4. a long run (single posts from 8 clients, then arrays of 500) over many members on make
   run, with the resident memory of every server process at the start and the end.

``--quick`` (the default, a few minutes) and ``--full`` (the full sizes: the long run is
100,000 events over 10,000 members) set the sizes; each can be given on its own too. The
rate limit is set far above what is sent (API_THROTTLE_RATE=10000000/day), so nothing is
refused; the product still counts each request in its shared store, as it does in
production. Clients: Python threads in one process on the same machine, http.client with a
kept-alive connection each. Prints product vs bare with the ratio and the goals
(docs/benchmarks.md), and saves everything to bench-results/api.json (git-ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import random
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bench.common import (
    ROOT,
    SEED,
    _maybe,
    _pick,
    event_data,
    fmt_rate,
    load_result,
    machine_line,
    save_result,
    table,
)
from bench.engine import summary_markdown
from bench.servers import (
    BARE,
    MAKE_RUN,
    MAKE_SERVE,
    PRODUCT,
    THROTTLE_RATE,
    PostgresDatabases,
    Server,
    Shape,
    SqliteDatabases,
    Target,
    base_env,
    manage,
    postgres_server,
)

EVENT_MIX = (("run", 62), ("pain_report", 28), ("cross_training", 7), ("profile", 3))
REQUEST_TIMEOUT = 120.0
BATCH_SIZE = 500

# Sizes: events per workload and target.
QUICK = {
    "single_1": 300,
    "single_8": 800,
    "single_16": 800,
    "arrays": 4,
    "members": 200,
    "long_events": 5_000,
    "long_members": 1_000,
    "import_lines": 50_000,
}
FULL = {
    "single_1": 1_000,
    "single_8": 4_000,
    "single_16": 4_000,
    "arrays": 20,
    "members": 200,
    "long_events": 100_000,
    "long_members": 10_000,
    "import_lines": 50_000,
}


# -- events -----------------------------------------------------------------------------
def make_events(
    count: int, *, members: int, seed: int = SEED + 7, prefix: str = "member", days: int | None = None
) -> list[dict[str, Any]]:
    """``count`` API events over ``members`` members, in time order (about one event per
    member per day, ending now), with unique external ids."""
    rng = random.Random(seed)
    tz = dt.timezone(dt.timedelta(hours=1))
    now = dt.datetime.now(tz).replace(microsecond=0)
    span = dt.timedelta(days=days or max(1, count // max(1, members)))
    painful = {m: _maybe(rng, 0.3) for m in range(members)}
    stamps = sorted(now - dt.timedelta(seconds=rng.randint(60, int(span.total_seconds()))) for _ in range(count))
    run_id = secrets.token_hex(3)
    events = []
    for index, occurred_at in enumerate(stamps):
        member = rng.randrange(members)
        kind = _pick(rng, EVENT_MIX)
        pain = painful[member] and _maybe(rng, 0.6)
        data = event_data(rng, kind, painful=pain, figures=False)
        events.append(
            {
                "external_id": f"bench-{run_id}-{index}",
                "member": f"{prefix}-{member:05d}",
                "type": kind,
                "occurred_at": occurred_at.isoformat(),
                "data": data,
            }
        )
    return events


BAD_LINES = (
    lambda event: json.dumps(event)[:-7],  # cut off: not JSON
    lambda event: json.dumps({k: v for k, v in event.items() if k != "member"}),  # a field missing
    lambda event: json.dumps({**event, "type": "swim"}),  # an unknown type
    lambda event: json.dumps({**event, "occurred_at": event["occurred_at"][:19]}),  # no UTC offset
)


def import_file(lines: int, *, bad_share: float = 0.01, members: int = 1_000) -> tuple[str, int]:
    """A JSON Lines file of ``lines`` events, ``bad_share`` of them bad (four kinds, spread
    through the file); its path and the number of bad lines."""
    bad = round(lines * bad_share)
    events = make_events(lines, members=members, seed=SEED + 11, prefix="import-member")
    rng = random.Random(SEED + 12)
    bad_at = set(rng.sample(range(lines), bad))
    fd, path = tempfile.mkstemp(prefix="bench-import-", suffix=".jsonl")
    with os.fdopen(fd, "w") as out:
        for index, event in enumerate(events):
            out.write((BAD_LINES[index % len(BAD_LINES)](event) if index in bad_at else json.dumps(event)) + "\n")
    return path, bad


# -- the client -------------------------------------------------------------------------
def request(port: int, method: str, path: str, body: Any = None, key: str = "") -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    try:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        data = response.read()
        return response.status, (json.loads(data) if data else None)
    finally:
        connection.close()


class Client:
    """One API client; a new connection per request by default (``keepalive=True`` reuses one)."""

    def __init__(self, port: int, key: str, *, keepalive: bool = False) -> None:
        self.port = port
        self.keepalive = keepalive
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self.connection: http.client.HTTPConnection | None = None

    def post(self, path: str, body: Any) -> tuple[int, bytes]:
        payload = json.dumps(body).encode()
        for attempt in (1, 2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
            try:
                self.connection.request("POST", path, body=payload, headers=self.headers)
                response = self.connection.getresponse()
                data = response.read()
                if not self.keepalive or response.will_close:
                    self.close()
                return response.status, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A kept-alive connection the server had closed: send again (an event repeated
                # with the same external_id answers 200 and stores nothing twice).
                self.close()
                if attempt == 2 or not self.keepalive:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: dict[int, int] = {}
        self.advice = 0
        self.latencies: list[float] = []
        self.errors: list[str] = []

    def add(self, status: int, advice: int = 0, latency: float | None = None) -> None:
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.advice += advice
            if latency is not None:
                self.latencies.append(latency)


def post_singles(port: int, key: str, events: Sequence[dict], threads: int) -> tuple[float, Tally]:
    tally = Tally()
    shares = [events[i::threads] for i in range(threads)]

    def worker(share: Sequence[dict]) -> None:
        client = Client(port, key, keepalive=True)
        try:
            for event in share:
                started = time.perf_counter()
                status, data = client.post("/api/v1/events/", event)
                elapsed = time.perf_counter() - started
                advice = 0
                if status in (200, 201):
                    advice = len(json.loads(data).get("advice", []))
                elif len(tally.errors) < 5:
                    tally.errors.append(f"{status}: {data[:300]!r}")
                tally.add(status, advice, elapsed)
        except Exception as exc:
            tally.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            client.close()

    workers = [threading.Thread(target=worker, args=(share,)) for share in shares]
    started = time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=REQUEST_TIMEOUT * len(events))
    return time.perf_counter() - started, tally


def post_batches(port: int, key: str, events: Sequence[dict], size: int, *, clients: int = 1) -> tuple[float, Tally]:
    """Arrays of ``size`` events, from ``clients`` client threads taking arrays in turn."""
    tally = Tally()
    chunks = [list(events[start : start + size]) for start in range(0, len(events), size)]

    def worker(share: Sequence[list]) -> None:
        client = Client(port, key, keepalive=True)
        try:
            for batch in share:
                t0 = time.perf_counter()
                status, data = client.post("/api/v1/events/", batch)
                elapsed = time.perf_counter() - t0
                if status != 200:
                    tally.errors.append(f"array {status}: {data[:300]!r}")
                    tally.add(status, 0, elapsed)
                    continue
                with tally.lock:
                    tally.latencies.append(elapsed)
                for item in json.loads(data):
                    tally.add(item["status"], len((item.get("event") or {}).get("advice", [])))
        except Exception as exc:
            tally.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            client.close()

    workers = [threading.Thread(target=worker, args=(chunks[i::clients],)) for i in range(clients)]
    started = time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return time.perf_counter() - started, tally


def quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def ms(value: float | None) -> str:
    return "–" if value is None else f"{value * 1000:.1f}"


# -- workloads --------------------------------------------------------------------------
@dataclass
class Measure:
    events: int
    seconds: float
    tally: Tally
    requests: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        stored = self.tally.statuses.get(201, 0)
        return {
            "events": self.events,
            "requests": self.requests,
            "seconds": self.seconds,
            "rate": self.rate,
            "p50": quantile(self.tally.latencies, 0.5),
            "p99": quantile(self.tally.latencies, 0.99),
            "max": max(self.tally.latencies, default=None),
            "answers": statuses(self.tally),
            "all_stored": stored == self.events and not self.tally.errors,
            "errors": self.tally.errors[:5],
        }


def statuses(tally: Tally) -> str:
    return ", ".join(f"{count:,}x {status}" for status, count in sorted(tally.statuses.items()))


def singles(server: Server, key: str, events: Sequence[dict], clients: int) -> Measure:
    seconds, tally = post_singles(server.port, key, events, threads=clients)
    return Measure(len(events), seconds, tally, len(events))


def arrays(server: Server, key: str, events: Sequence[dict], clients: int = 1) -> Measure:
    seconds, tally = post_batches(server.port, key, events, BATCH_SIZE, clients=clients)
    return Measure(len(events), seconds, tally, -(-len(events) // BATCH_SIZE))


def describe(entry: dict[str, Any] | None, *, latency: bool = True) -> str:
    if not entry:
        return "–"
    text = f"{fmt_rate(entry['rate'])} events/s"
    if latency:
        text += f", p50 {ms(entry['p50'])} ms, p99 {ms(entry['p99'])} ms"
    else:
        text += f" ({ms(entry['p50'])} ms an array)"
    if not entry["all_stored"]:
        text += f" [answers: {entry['answers']}]"
    return text


def run_shape(
    shape: Shape,
    databases: Any,
    workloads: list[tuple[str, str, Callable[[Server], Measure]]],
    results: dict,
    *,
    long_run: Callable[[Server], Measure] | None = None,
) -> None:
    """Start the product and the bare endpoint in ``shape`` and run ``workloads`` on each in turn."""
    label = shape.label(databases.kind)
    servers = []
    try:
        for target in (PRODUCT, BARE):
            servers.append(Server(target, shape, databases.copy(target.name)))
        for server in servers:
            server.wait_ready()
            server.snapshot("start")
            print(f"  {server.label} (port {server.port}, pid {server.process.pid})", flush=True)
        warm = make_events(40, members=20, seed=SEED + 3, prefix="warm-member")
        for server in servers:
            singles(server, databases.key, warm, clients=1)
        shape_results = results.setdefault(label, {"shape": shape.name, "database": databases.kind, "workloads": {}})
        for name, title, work in workloads:
            entry = shape_results["workloads"].setdefault(name, {"title": title})
            for server in servers:
                measure = work(server)
                entry[server.target.name] = measure.as_dict()
                print(f"  {title}, {server.target.name}: {describe(entry[server.target.name])}", flush=True)
        if long_run is not None:
            entry = shape_results["workloads"].setdefault("long_run", {"title": "long run"})
            for server in servers:
                server.snapshot("before the long run")
                measure = long_run(server)
                entry[server.target.name] = measure.as_dict()
                print(f"  long run, {server.target.name}: {describe(entry[server.target.name])}", flush=True)
        for server in servers:
            server.snapshot("end")
            shape_results.setdefault("memory", {})[server.target.name] = [
                {"role": m.role, "pid": m.pid, "rss_mb": m.rss_mb} for m in server.memory.values()
            ]
            shape_results.setdefault("alive", {})[server.target.name] = server.alive()
            if not server.alive():
                print(f"WARNING: the {server.target.name} server died:\n{server.output()}")
    finally:
        for server in servers:
            server.stop()


# -- importevents -----------------------------------------------------------------------
def importevents_available() -> tuple[bool, str]:
    done = manage(base_env("sqlite:///:memory:"), "help", "importevents", timeout=120)
    if done.returncode == 0:
        return True, ""
    return False, (done.stderr.strip().splitlines() or ["manage.py help importevents failed"])[0]


def sqlite_counts(url: str) -> dict[str, int]:
    path = url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        return {
            table_name: connection.execute(f"SELECT COUNT(*) FROM coaching_{table_name}").fetchone()[0]  # noqa: S608
            for table_name in ("event", "member", "advice")
        }


def import_runs(target: Target, database_url: str, path: str) -> dict[str, Any]:
    """Import ``path`` twice into a fresh copy of the database; time and rows created by each run."""
    env = base_env(database_url, target.settings)
    if target is PRODUCT:
        command = [sys.executable, "manage.py", "importevents", path, "--gym", "bench"]
    else:
        command = [sys.executable, "-m", "bench.bare.importevents", path, "--gym", "bench"]
    runs = []
    for _ in range(2):
        before = sqlite_counts(database_url)
        started = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
        seconds = time.perf_counter() - started
        after = sqlite_counts(database_url)
        runs.append(
            {
                "seconds": seconds,
                "exit": done.returncode,
                "created": {name: after[name] - before[name] for name in after},
                "output": (done.stdout + done.stderr).strip()[-600:],
            }
        )
        print(
            f"  importevents, {target.name}: {seconds:.1f} s, exit {done.returncode}, created {runs[-1]['created']}",
            flush=True,
        )
    return {"command": " ".join(command[1:]), "runs": runs}


# -- goals and tables -------------------------------------------------------------------
def ratio(product: dict | None, bare: dict | None) -> float | None:
    if not product or not bare or not bare.get("rate"):
        return None
    return product["rate"] / bare["rate"]


def verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("met" if ok else "NOT MET")


def goals_evaluate(results: dict[str, Any]) -> list[dict[str, Any]]:
    shapes = results["shapes"]
    run = next((s for s in shapes.values() if s["shape"] == "make run"), None)
    serve = next((s for s in shapes.values() if s["shape"] == "make serve"), None)
    goals = []

    def work(shape: dict | None, name: str) -> dict:
        return (shape or {}).get("workloads", {}).get(name, {})

    single_8 = work(run, "single_8")
    p, b = single_8.get("product"), single_8.get("bare")
    goals.append(
        {
            "goal": "single posts, 8 clients, make run: >= 60 % of bare events/s, p99 <= 100 ms",
            "measured": f"{fmt_ratio_pct(ratio(p, b))} of bare; p99 {ms(p['p99'] if p else None)} ms",
            "ok": None if not (p and b) else (ratio(p, b) >= 0.6 and (p["p99"] or 0) <= 0.1),
        }
    )
    single_16 = work(serve, "single_16")
    p = single_16.get("product")
    goals.append(
        {
            "goal": "single posts, 16 clients, make serve + PostgreSQL: >= 300 events/s, p99 <= 100 ms",
            "measured": f"{fmt_rate(p['rate'])} events/s, p99 {ms(p['p99'])} ms" if p else "no PostgreSQL",
            "ok": None if not p else (p["rate"] >= 300 and (p["p99"] or 0) <= 0.1),
        }
    )
    for shape, where in ((run, "make run"), (serve, "make serve + PostgreSQL")):
        entry = work(shape, "arrays")
        p, b = entry.get("product"), entry.get("bare")
        goals.append(
            {
                "goal": f"arrays of 500, {where}: >= 2,000 events/s and faster than bare row-by-row arrays",
                "measured": f"{fmt_rate(p['rate'])} vs bare {fmt_rate(b['rate'])} events/s" if p and b else "–",
                "ok": None if not (p and b) else (p["rate"] >= 2000 and p["rate"] > b["rate"]),
            }
        )
    imported = results.get("importevents", {})
    runs = (imported.get("product") or {}).get("runs")
    if runs:
        first, second = runs
        ok = first["exit"] == 0 and first["seconds"] < 60 and not any(second["created"].values())
        measured = f"{first['seconds']:.1f} s; second import created {second['created']}"
    else:
        ok, measured = None, imported.get("skipped", "–")
    goals.append(
        {
            "goal": f"importevents {results['sizes']['import_lines']:,} lines, 1 % bad, SQLite: < 60 s; "
            "the second import creates nothing",
            "measured": measured,
            "ok": ok,
        }
    )
    growths = []
    for shape in (run,):
        for target, processes in ((shape or {}).get("memory") or {}).items():
            for process in processes:
                rss = process["rss_mb"]
                if "before the long run" in rss and "end" in rss:
                    growths.append((rss["end"] - rss["before the long run"], target, process["role"]))
    product_growth = max((g for g in growths if g[1] == "product"), default=None)
    goals.append(
        {
            "goal": "memory: growth < 50 MB over the long run (full size: 100,000 events, 10,000 members)",
            "measured": (
                f"{product_growth[0]:+.1f} MB at most (product {product_growth[2]}), over "
                f"{results['sizes']['long_events']:,} events, {results['sizes']['long_members']:,} members"
            )
            if product_growth
            else "–",
            "ok": None if product_growth is None else product_growth[0] < 50,
            "scaled": results["sizes"]["long_events"] < 100_000,
        }
    )
    return goals


def fmt_ratio_pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f} %"


def report(results: dict[str, Any]) -> str:
    rows = []
    for shape in results["shapes"].values():
        for name, entry in shape["workloads"].items():
            p, b = entry.get("product"), entry.get("bare")
            latency = name != "arrays"
            rows.append(
                [
                    f"{entry['title']} ({p['events'] if p else 0:,} events)",
                    f"{shape['shape']}, {shape['database']}",
                    describe(p, latency=latency),
                    describe(b, latency=latency),
                    fmt_ratio_pct(ratio(p, b)),
                ]
            )
    imported = results.get("importevents", {})
    for target in ("product", "bare"):
        for number, run in enumerate((imported.get(target) or {}).get("runs", []), start=1):
            rows.append(
                [
                    f"import of {results['sizes']['import_lines']:,} lines, run {number}, {target}",
                    "SQLite",
                    f"{run['seconds']:.1f} s" if target == "product" else "",
                    f"{run['seconds']:.1f} s" if target == "bare" else "",
                    f"created {run['created']}, exit {run['exit']}",
                ]
            )
    if imported.get("skipped"):
        rows.append(["importevents", "SQLite", "skipped", "skipped", imported["skipped"]])
    parts = [
        table(
            ["workload", "shape", "product", "bare endpoint", "product / bare"],
            rows,
            title="API: the product against the bare insert-only endpoint",
        )
    ]
    goal_rows = [
        [g["goal"], g["measured"], verdict(g["ok"]) + (" (at this smaller size)" if g.get("scaled") else "")]
        for g in results["goals"]
    ]
    parts.append(table(["goal", "measured", "result"], goal_rows, title="Goals"))
    memory_rows = []
    for shape in results["shapes"].values():
        for target, processes in (shape.get("memory") or {}).items():
            for process in processes:
                rss = process["rss_mb"]
                moments = ("start", "before the long run", "end")
                cells = [f"{rss[m]:.1f}" if m in rss else "–" for m in moments]
                growth = (
                    rss["end"] - rss["before the long run"] if "end" in rss and "before the long run" in rss else None
                )
                memory_rows.append(
                    [
                        f"{shape['shape']}, {shape['database']}",
                        target,
                        process["role"],
                        *cells,
                        "–" if growth is None else f"{growth:+.1f}",
                    ]
                )
    parts.append(
        table(
            ["shape", "server", "process", "RSS at start", "before the long run", "at the end", "long-run growth"],
            memory_rows,
            title="Server memory (MB, resident set size, psutil)",
        )
    )
    return "\n".join(parts)


# -- main -------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small sizes, a few minutes (the default)")
    mode.add_argument("--full", action="store_true", help="the full sizes (long run: 100,000 events, 10,000 members)")
    parser.add_argument("--compare", action="store_true", help="accepted for clarity: the comparison always runs")
    for name, value in QUICK.items():
        parser.add_argument(
            f"--{name.replace('_', '-')}", type=int, default=None, help=f"quick: {value:,}; full: {FULL[name]:,}"
        )
    parser.add_argument("--no-postgres", action="store_true", help="skip the make serve + PostgreSQL shape")
    parser.add_argument("--no-import", action="store_true", help="skip the importevents workload")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a goal is not met or an event was not stored"
    )
    args = parser.parse_args(argv)
    sizes = dict(FULL if args.full else QUICK)
    for name in sizes:
        if getattr(args, name) is not None:
            sizes[name] = getattr(args, name)

    print(f"bench.api: {machine_line()}; load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"mode: {'full' if args.full else 'quick'}; sizes: {sizes}")
    print(
        f"rate limit: API_THROTTLE_RATE={THROTTLE_RATE} for every server (never reached; the product still counts "
        "each request in its shared store, the bare endpoint has no throttle)"
    )
    results: dict[str, Any] = {
        "machine": machine_line(),
        "load_average_start": os.getloadavg(),
        "mode": "full" if args.full else "quick",
        "sizes": sizes,
        "throttle_rate": THROTTLE_RATE,
        "shapes": {},
        "started": dt.datetime.now(dt.UTC).isoformat(),
    }
    started = time.monotonic()

    # make run, SQLite
    sqlite_dbs = SqliteDatabases()
    total = sizes["single_1"] + sizes["single_8"] + sizes["arrays"] * BATCH_SIZE
    events = make_events(total, members=sizes["members"])
    one, eight = events[: sizes["single_1"]], events[sizes["single_1"] : sizes["single_1"] + sizes["single_8"]]
    batched = events[sizes["single_1"] + sizes["single_8"] :]
    long_events = make_events(sizes["long_events"], members=sizes["long_members"], seed=SEED + 9, prefix="long-member")
    half = len(long_events) // 2

    def long_run(server: Server) -> Measure:
        first = singles(server, sqlite_dbs.key, long_events[:half], clients=8)
        second = arrays(server, sqlite_dbs.key, long_events[half:])
        tally = first.tally
        for status, count in second.tally.statuses.items():
            tally.statuses[status] = tally.statuses.get(status, 0) + count
        tally.errors += second.tally.errors
        return Measure(len(long_events), first.seconds + second.seconds, tally, first.requests + second.requests)

    print(f"\n{MAKE_RUN.label('SQLite')}, and the bare endpoint beside it", flush=True)
    run_shape(
        MAKE_RUN,
        sqlite_dbs,
        [
            ("single_1", "single posts, 1 client", lambda s: singles(s, sqlite_dbs.key, one, 1)),
            ("single_8", "single posts, 8 clients", lambda s: singles(s, sqlite_dbs.key, eight, 8)),
            ("arrays", f"arrays of {BATCH_SIZE}", lambda s: arrays(s, sqlite_dbs.key, batched)),
        ],
        results["shapes"],
        long_run=long_run if sizes["long_events"] else None,
    )

    # make serve, PostgreSQL
    if args.no_postgres:
        results["postgres"] = "skipped (--no-postgres)"
    else:
        url, how = postgres_server()
        results["postgres"] = how
        if url is None:
            print(f"\nmake serve + PostgreSQL: skipped ({how})")
        else:
            print(f"\n{MAKE_SERVE.label('PostgreSQL')} ({how}), and the bare endpoint beside it", flush=True)
            pg_dbs = PostgresDatabases(url)
            try:
                total = sizes["single_16"] + sizes["arrays"] * BATCH_SIZE
                events = make_events(total, members=sizes["members"], seed=SEED + 8)
                sixteen, batched_pg = events[: sizes["single_16"]], events[sizes["single_16"] :]
                run_shape(
                    MAKE_SERVE,
                    pg_dbs,
                    [
                        ("single_16", "single posts, 16 clients", lambda s: singles(s, pg_dbs.key, sixteen, 16)),
                        ("arrays", f"arrays of {BATCH_SIZE}", lambda s: arrays(s, pg_dbs.key, batched_pg)),
                    ],
                    results["shapes"],
                )
            finally:
                pg_dbs.close()

    # importevents, SQLite
    results["importevents"] = {}
    available, why = importevents_available()
    if args.no_import or not sizes["import_lines"]:
        results["importevents"]["skipped"] = "skipped (--no-import)"
    elif not available:
        results["importevents"]["skipped"] = f"skipped: manage.py importevents does not exist yet ({why})"
        print(f"\nimportevents: {results['importevents']['skipped']}")
    else:
        path, bad = import_file(sizes["import_lines"])
        print(f"\nimportevents: {sizes['import_lines']:,} lines, {bad:,} bad, file {path}", flush=True)
        try:
            results["importevents"]["bad_lines"] = bad
            for target in (PRODUCT, BARE):
                results["importevents"][target.name] = import_runs(
                    target, sqlite_dbs.copy(f"import-{target.name}"), path
                )
        finally:
            for leftover in (path, path + ".errors.txt"):  # the file, and the report importevents writes beside it
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leftover)

    results["goals"] = goals_evaluate(results)
    results["seconds"] = time.monotonic() - started
    results["load_average_end"] = os.getloadavg()
    print("\n" + report(results))
    print(
        f"\nOne Python client process (threads, http.client, a kept-alive connection each) on the same "
        f"{os.cpu_count()}-CPU machine as the servers; latency is per request (an array's is the whole array's). "
        f"Load average at the start {results['load_average_start'][0]:.2f}, at the end "
        f"{results['load_average_end'][0]:.2f}; {results['seconds'] / 60:.1f} minutes."
    )
    path = save_result("api", results)
    print(f"saved {path.relative_to(ROOT)}")
    engine = load_result("engine")
    if engine:
        print("\n" + summary_markdown(engine))
    not_stored = [
        (label, name, target)
        for label, shape in results["shapes"].items()
        for name, entry in shape["workloads"].items()
        for target in ("product", "bare")
        if entry.get(target) and not entry[target]["all_stored"]
    ]
    if not_stored:
        print(f"WARNING: not every event was answered 201 in: {not_stored}")
    failed = not_stored or any(g["ok"] is False for g in results["goals"])
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
