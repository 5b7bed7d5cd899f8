"""API benchmark: the real server, over loopback, on a temporary database.

    python -m bench.api [--single 1000] [--threads 4] [--batches 20] [--batch-size 500] [--members 200]

Starts gunicorn exactly as ``make run`` serves the product (one process, 8 threads) on a free
127.0.0.1 port against a fresh SQLite file (migrated, ``installpack``, ``creategym bench``),
then posts realistic run and pain-report events (unique external ids, ~200 members, each
member's events in time order) to ``/api/v1/events/``:

1. single events, one client thread (events/s, p50/p99 latency);
2. single events, N client threads;
3. batches of 500 events (events/s).

Only loopback traffic, bounded loops, and the server is stopped at the end, whatever
happens. Prints its tables, then the summary for the README (with the engine figures of
``python -m bench.engine`` if that ran before: bench-results/engine.json).
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
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
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
    temp_sqlite_path,
)
from bench.engine import summary_markdown

EVENT_MIX = (("run", 62), ("pain_report", 28), ("cross_training", 7), ("profile", 3))
START_TIMEOUT = 60.0
REQUEST_TIMEOUT = 120.0


# -- events -----------------------------------------------------------------------------
def make_events(count: int, *, members: int, seed: int = SEED + 7) -> list[dict[str, Any]]:
    """``count`` API events over ``members`` members, in time order (about one event per
    member per day, ending now), with unique external ids."""
    rng = random.Random(seed)
    tz = dt.timezone(dt.timedelta(hours=1))
    now = dt.datetime.now(tz).replace(microsecond=0)
    span = dt.timedelta(days=max(1, count // max(1, members)))
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
                "member": f"member-{member:04d}",
                "type": kind,
                "occurred_at": occurred_at.isoformat(),
                "data": data,
            }
        )
    return events


# -- the server -------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    if done.returncode:
        raise SystemExit(f"bench.api: manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def server_command(port: int) -> list[str]:
    """The command ``make run`` serves with (see the Makefile's run target)."""
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    return [gunicorn, "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "8"]


SERVER_LABEL = "gunicorn, 1 process x 8 threads, as make run"


class Server:
    def __init__(self, env: dict[str, str], port: int) -> None:
        self.port = port
        # open for the server process's lifetime; closed in stop()
        self.log = open(os.path.join(os.path.dirname(env["BENCH_DB"]), f"bench-server-{port}.log"), "w+")  # noqa: SIM115
        self.process = subprocess.Popen(
            server_command(port),
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"bench.api: the server exited early:\n{self.output()}")
            try:
                status, _ = request(self.port, "GET", "/healthz")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"bench.api: the server did not answer /healthz within {START_TIMEOUT:.0f} s")

    def rss_mb(self) -> float | None:
        try:
            import psutil

            return psutil.Process(self.process.pid).memory_info().rss / 2**20
        except Exception:
            return None

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()
        with contextlib.suppress(OSError):
            os.unlink(self.log.name)


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


def keepalive_penalty(port: int, count: int = 20) -> tuple[float, float]:
    """Mean ms of GET /healthz with a new connection each time, and on one kept-alive connection."""
    started = time.perf_counter()
    for _ in range(count):
        request(port, "GET", "/healthz")
    fresh = (time.perf_counter() - started) / count
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    started = time.perf_counter()
    for _ in range(count):
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
        if response.will_close:
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    kept = (time.perf_counter() - started) / count
    connection.close()
    return fresh * 1000, kept * 1000


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
        client = Client(port, key)
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


def post_batches(port: int, key: str, events: Sequence[dict], size: int) -> tuple[float, Tally]:
    tally = Tally()
    client = Client(port, key)
    started = time.perf_counter()
    try:
        for start in range(0, len(events), size):
            batch = list(events[start : start + size])
            t0 = time.perf_counter()
            status, data = client.post("/api/v1/events/", batch)
            elapsed = time.perf_counter() - t0
            if status != 200:
                tally.errors.append(f"batch {status}: {data[:300]!r}")
                tally.add(status, 0, elapsed)
                continue
            with tally.lock:
                tally.latencies.append(elapsed)
            for item in json.loads(data):
                tally.add(item["status"], len((item.get("event") or {}).get("advice", [])))
    finally:
        client.close()
    return time.perf_counter() - started, tally


def quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def ms(value: float | None) -> str:
    return "–" if value is None else f"{value * 1000:.1f}"


# -- main -------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--single", type=int, default=1000, help="single posts in each of the two single phases")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--debug", action="store_true", help="serve with DJANGO_DEBUG=1 (as make run does)")
    parser.add_argument("--settings", default="config.settings", help="Django settings module for the server")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any event was not answered 201")
    args = parser.parse_args(argv)

    db = temp_sqlite_path("api")
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": args.settings,
            "DATABASE_URL": f"sqlite:///{db}",
            "BENCH_DB": db,
            "DJANGO_DEBUG": "1" if args.debug else "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "API_THROTTLE_RATE": "1000000/minute",
            "LOG_LEVEL": "ERROR",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.pop("DJANGO_HTTPS", None)
    total = args.single * 2 + args.batches * args.batch_size
    events = make_events(total, members=args.members)
    single_one = events[: args.single]
    single_many = events[args.single : args.single * 2]
    batched = events[args.single * 2 :]

    print(f"bench.api: {machine_line()}; load average {os.getloadavg()[0]:.2f}")
    print(f"temporary database {db}; DJANGO_DEBUG={env['DJANGO_DEBUG']}; settings {args.settings}")
    manage(env, "migrate", "--noinput")
    manage(env, "installpack")
    key = manage(env, "creategym", "bench").strip().splitlines()[-1].strip()
    port = free_port()
    server = Server(env, port)
    results: dict[str, Any] = {}
    try:
        server.wait_ready()
        rss_start = server.rss_mb()
        fresh_ms, kept_ms = keepalive_penalty(port)
        print(
            f"server: {' '.join(server_command(port))} (pid {server.process.pid}); "
            f"{total:,} events over {args.members} members",
            flush=True,
        )

        seconds_1, tally_1 = post_singles(port, key, single_one, threads=1)
        print(f"  single posts, 1 thread: {len(single_one) / seconds_1:,.0f} events/s", flush=True)
        seconds_n, tally_n = post_singles(port, key, single_many, threads=args.threads)
        print(f"  single posts, {args.threads} threads: {len(single_many) / seconds_n:,.0f} events/s", flush=True)
        seconds_b, tally_b = post_batches(port, key, batched, args.batch_size)
        print(f"  batches of {args.batch_size}: {len(batched) / seconds_b:,.0f} events/s", flush=True)
        rss_end = server.rss_mb()
        alive = server.process.poll() is None
    finally:
        server_output = server.output()
        server.stop()

    def statuses(tally: Tally) -> str:
        return ", ".join(f"{count:,}x {status}" for status, count in sorted(tally.statuses.items()))

    rows = [
        [
            f"single POST /api/v1/events/, 1 client thread, {len(single_one):,} events",
            fmt_rate(len(single_one) / seconds_1),
            ms(quantile(tally_1.latencies, 0.5)),
            ms(quantile(tally_1.latencies, 0.99)),
            ms(max(tally_1.latencies, default=None)),
            statuses(tally_1),
            f"{tally_1.advice:,}",
        ],
        [
            f"single POST, {args.threads} client threads, {len(single_many):,} events",
            fmt_rate(len(single_many) / seconds_n),
            ms(quantile(tally_n.latencies, 0.5)),
            ms(quantile(tally_n.latencies, 0.99)),
            ms(max(tally_n.latencies, default=None)),
            statuses(tally_n),
            f"{tally_n.advice:,}",
        ],
        [
            f"POST of {args.batch_size}-event arrays, 1 client, {args.batches} batches",
            fmt_rate(len(batched) / seconds_b),
            ms(quantile(tally_b.latencies, 0.5)),
            ms(quantile(tally_b.latencies, 0.99)),
            ms(max(tally_b.latencies, default=None)),
            statuses(tally_b),
            f"{tally_b.advice:,}",
        ],
    ]
    print(
        table(
            ["workload", "events/s", "p50 ms", "p99 ms", "max ms", "answers (per event)", "advice"],
            rows,
            title=f"API: {SERVER_LABEL}, loopback, temporary SQLite (WAL)",
        )
    )
    print(
        "Latency is per request (a batch request carries all its events); each event's answer status is "
        "counted per event. One Python client process (http.client, a new connection per request) on the "
        "same 2-core machine as the server."
    )
    print(
        f"Keep-alive: GET /healthz took {fresh_ms:.1f} ms with a new connection each time and {kept_ms:.1f} ms on "
        f"one kept-alive connection."
    )
    print(
        table(
            ["when", "server RSS (MB)"],
            [
                ["after start", f"{rss_start:.1f}" if rss_start else "–"],
                ["at the end", f"{rss_end:.1f}" if rss_end else "–"],
            ],
            title="Server memory",
        )
    )
    problems = [e for t in (tally_1, tally_n, tally_b) for e in t.errors]
    unexpected = {s: c for t in (tally_1, tally_n, tally_b) for s, c in t.statuses.items() if s != 201}
    if unexpected or problems or not alive:
        print(f"\nWARNING: not every event was stored as new (201): {unexpected}; server alive at the end: {alive}")
        for problem in problems[:10]:
            print(f"  {problem}")
        print("server log (tail):\n" + server_output[-2000:])

    results = {
        "machine": machine_line(),
        "members": args.members,
        "threads": args.threads,
        "batch_size": args.batch_size,
        "debug": args.debug,
        "single_1": {
            "events": len(single_one),
            "rate": len(single_one) / seconds_1,
            "answers": statuses(tally_1),
            "p50": quantile(tally_1.latencies, 0.5),
            "p99": quantile(tally_1.latencies, 0.99),
        },
        "single_n": {
            "events": len(single_many),
            "rate": len(single_many) / seconds_n,
            "answers": statuses(tally_n),
            "p50": quantile(tally_n.latencies, 0.5),
            "p99": quantile(tally_n.latencies, 0.99),
        },
        "batches": {
            "events": len(batched),
            "rate": len(batched) / seconds_b,
            "answers": statuses(tally_b),
            "p50": quantile(tally_b.latencies, 0.5),
        },
        "ok": not unexpected and not problems and alive,
        "healthz_ms": fresh_ms,
        "healthz_keepalive_ms": kept_ms,
    }
    save_result("api", results)
    print("\n" + final_summary(results, load_result("engine")))
    return 0 if results["ok"] or not args.strict else 1


def final_summary(api: dict[str, Any], engine: dict[str, Any] | None) -> str:
    parts = ["## Performance (make bench)\n"]
    if engine:
        parts.append(summary_markdown(engine))
        parts.append("")
    rows = [
        [
            "single events, 1 client",
            fmt_rate(api["single_1"]["rate"]),
            ms(api["single_1"]["p50"]),
            ms(api["single_1"]["p99"]),
            api["single_1"]["answers"],
        ],
        [
            f"single events, {api['threads']} clients",
            fmt_rate(api["single_n"]["rate"]),
            ms(api["single_n"]["p50"]),
            ms(api["single_n"]["p99"]),
            api["single_n"]["answers"],
        ],
        [
            f"arrays of {api['batch_size']} events",
            fmt_rate(api["batches"]["rate"]),
            ms(api["batches"]["p50"]) + " (per array)",
            "–",
            api["batches"]["answers"],
        ],
    ]
    where = f"{SERVER_LABEL}, SQLite, {api['members']} members, {api['machine']}"
    parts.append(f"#### API, POST /api/v1/events/ ({where})\n")
    parts.append(table(["workload", "events/s", "p50 ms", "p99 ms", "answers"], rows))
    return "\n".join(parts)


if __name__ == "__main__":
    sys.exit(main())
