"""What the engine and API benchmarks share: a throw-away database, the rule pack, seeded
event generators, timing and table printing.

Nothing here touches the developer's database: ``django_setup`` points DATABASE_URL at a
fresh SQLite file under the system temp directory and deletes it at exit.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import glob
import importlib
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench-results"  # git-ignored
SEED = 20260101


# -- environment ------------------------------------------------------------------------
def temp_sqlite_path(tag: str) -> str:
    fd, path = tempfile.mkstemp(prefix=f"bench-{tag}-", suffix=".sqlite3")
    os.close(fd)
    os.unlink(path)

    def _cleanup() -> None:
        for name in glob.glob(path + "*"):
            with contextlib.suppress(OSError):
                os.unlink(name)

    atexit.register(_cleanup)
    return path


def django_setup(tag: str) -> str:
    """Configure Django on a fresh temporary SQLite database, migrated. Returns its path."""
    path = temp_sqlite_path(tag)
    os.environ["DATABASE_URL"] = f"sqlite:///{path}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    return path


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def machine_line() -> str:
    cpus = os.cpu_count()
    return f"CPython {platform.python_version()}, {platform.machine()}, {cpus} CPU(s), {platform.system()}"


def package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


# -- the rule pack ----------------------------------------------------------------------
def _looks_like_specs(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) > 0
        and all(isinstance(item, Mapping) and "key" in item and "conditions" in item for item in value)
    )


def pack_specs() -> list[dict[str, Any]]:
    """The default rule pack's specs (coaching/rulepack.py), whatever the module calls them.

    ``BENCH_RULEPACK`` may name another module (for trying a draft pack).
    """
    name = os.environ.get("BENCH_RULEPACK", "coaching.rulepack")
    module = importlib.import_module(name)
    preferred = ("RULE_PACK", "PACK", "RULES", "SPECS", "DEFAULT_PACK", "rulepack_specs", "pack_specs", "specs")
    candidates = [getattr(module, attr) for attr in preferred if hasattr(module, attr)]
    candidates += [getattr(module, attr) for attr in dir(module) if not attr.startswith("_")]
    for candidate in candidates:
        value = candidate
        if callable(candidate) and not isinstance(candidate, type):
            try:
                value = candidate()
            except TypeError:
                continue
        if _looks_like_specs(value):
            return [dict(spec) for spec in value]
    raise SystemExit(f"bench: no list of rule specs found in {name}")


# -- events -----------------------------------------------------------------------------
SURFACES = (("road", 40), ("track", 10), ("treadmill", 15), ("trail", 10), ("hills", 15), ("mixed", 10))
POSTURES = (("good", 60), ("slouched", 15), ("overstriding", 15), ("leaning_back", 10))
ACTIVITIES = ("yoga", "swimming", "cycling", "walking", "massage", "strength", "other")
LOCATIONS = ("lower_back", "upper_back", "hip", "leg", "other")
T_END = dt.datetime(2026, 10, 1, 7, 30, tzinfo=dt.UTC)


def _pick(rng: random.Random, weighted: Sequence[tuple[str, int]]) -> str:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def _maybe(rng: random.Random, share: float) -> bool:
    return rng.random() < share


def _pain_level(rng: random.Random, painful: bool) -> int:
    if painful:
        return min(10, max(0, int(rng.gauss(5, 2))))
    return rng.choices(range(0, 7), [40, 20, 15, 10, 7, 5, 3])[0]


def run_data(rng: random.Random, *, painful: bool = False) -> dict[str, Any]:
    """A run as a gym's app sends it (docs/api.md), optional fields sometimes absent."""
    distance = round(min(42.0, max(1.0, rng.lognormvariate(1.6, 0.45))), 2)
    data: dict[str, Any] = {
        "distance_km": distance,
        "duration_min": round(distance * rng.uniform(5.0, 8.0), 1),
    }
    surface = _pick(rng, SURFACES)
    if _maybe(rng, 0.85):
        data["surface"] = surface
    if _maybe(rng, 0.7):
        data["elevation_gain_m"] = rng.randint(80, 400) if surface in ("hills", "trail") else rng.randint(0, 160)
    if _maybe(rng, 0.8):
        data["warmup_min"] = rng.choice((0, 0, 2, 3, 5, 5, 8, 10, 10, 15))
    if _maybe(rng, 0.85):
        data["pain_before"] = _pain_level(rng, painful)
        data["pain_during"] = _pain_level(rng, painful)
        data["pain_after"] = _pain_level(rng, painful)
    if _maybe(rng, 0.6):
        data["shoes_km"] = rng.randint(0, 900)
    if _maybe(rng, 0.7):
        data["running_shoes"] = _maybe(rng, 0.9)
    if _maybe(rng, 0.7):
        data["hydrated"] = _maybe(rng, 0.8)
    if _maybe(rng, 0.7):
        data["fuelled"] = _maybe(rng, 0.75)
    if _maybe(rng, 0.6):
        data["with_group"] = _maybe(rng, 0.3)
    if _maybe(rng, 0.5):
        data["posture"] = _pick(rng, POSTURES)
    if _maybe(rng, 0.6):
        data["rpe"] = rng.randint(1, 10)
    return data


def pain_report_data(rng: random.Random, *, painful: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {"pain": _pain_level(rng, painful)}
    if _maybe(rng, 0.7):
        data["location"] = rng.choice(LOCATIONS)
    for flag, share in (
        ("radiates_to_leg", 0.15),
        ("numbness", 0.04),
        ("leg_weakness", 0.03),
        ("bladder_or_bowel_change", 0.01),
        ("fever", 0.02),
        ("night_pain", 0.05),
    ):
        if _maybe(rng, 0.5):
            data[flag] = _maybe(rng, share)
    return data


def cross_training_data(rng: random.Random) -> dict[str, Any]:
    data: dict[str, Any] = {"activity": rng.choice(ACTIVITIES)}
    if _maybe(rng, 0.8):
        data["duration_min"] = rng.randint(15, 90)
    return data


def profile_data(rng: random.Random) -> dict[str, Any]:
    return {
        "experience": rng.choice(("new", "returning", "regular")),
        "cleared_by_physician": _maybe(rng, 0.7),
        "back_injury": _maybe(rng, 0.15),
        "chronic_back_pain": _maybe(rng, 0.2),
    }


def derived_figures(rng: random.Random, fact_type: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Plausible figures as coaching.figures would add them (docs/api.md, derived figures)."""
    previous = round(rng.choice((0.0, 0.0, rng.uniform(5, 40))), 2)
    weekly = round(max(0.0, previous * rng.uniform(0.6, 1.4) if previous else rng.uniform(0, 30)), 2)
    figures: dict[str, Any] = {
        "weekly_distance_km": weekly,
        "previous_week_distance_km": previous,
        "runs_last_7_days": rng.randint(0, 6),
        "consecutive_run_days": rng.choices((0, 1, 2, 3, 4), (10, 50, 25, 10, 5))[0],
        "longest_run_30d_km": round(rng.choice((0.0, rng.uniform(3, 20))), 2),
        "pain_free_run_streak": rng.randint(0, 9),
        "runs_without_group_streak": rng.randint(0, 8),
        "pain_reports_last_14_days": rng.randint(0, 6),
        "pain_episode_weeks": rng.choices((0, 1, 3, 6, 13, 20), (40, 20, 15, 10, 10, 5))[0],
        "experience": rng.choice(("new", "returning", "regular")),
        "cleared_by_physician": _maybe(rng, 0.7),
        "back_injury": _maybe(rng, 0.1),
        "chronic_back_pain": _maybe(rng, 0.15),
    }
    if previous > 0:
        figures["weekly_distance_increase_pct"] = round((weekly - previous) / previous * 100, 2)
    if _maybe(rng, 0.9):
        figures["hours_since_last_run"] = round(rng.uniform(10, 120), 2)
    if fact_type == "run":
        figures["run_number"] = rng.choices((1, rng.randint(2, 6), rng.randint(7, 300)), (3, 9, 88))[0]
        if figures["longest_run_30d_km"] > 0:
            longest = figures["longest_run_30d_km"]
            figures["long_run_increase_pct"] = round((data["distance_km"] - longest) / longest * 100, 2)
        if "pain_before" in data and "pain_after" in data:
            figures["pain_rise"] = data["pain_after"] - data["pain_before"]
    return figures


def event_data(rng: random.Random, fact_type: str, *, painful: bool = False, figures: bool = True) -> dict[str, Any]:
    if fact_type == "run":
        data = run_data(rng, painful=painful)
    elif fact_type == "pain_report":
        data = pain_report_data(rng, painful=painful)
    elif fact_type == "cross_training":
        data = cross_training_data(rng)
    else:
        data = profile_data(rng)
    if figures:
        data.update(derived_figures(rng, fact_type, data))
    return data


EVENT_MIX = (("run", 70), ("pain_report", 20), ("cross_training", 7), ("profile", 3))


def single_facts(count: int, *, seed: int = SEED) -> list[Any]:
    """``count`` independent facts (rules.evaluation.Fact), with derived figures, seeded."""
    from rules.evaluation import Fact

    rng = random.Random(seed)
    facts = []
    for index in range(count):
        fact_type = _pick(rng, EVENT_MIX)
        data = event_data(rng, fact_type, painful=_maybe(rng, 0.2))
        occurred_at = T_END - dt.timedelta(minutes=rng.randint(0, 60 * 24 * 90))
        facts.append(Fact(id=f"e{index}", type=fact_type, occurred_at=occurred_at, data=data, group=f"m{index % 997}"))
    return facts


def history_items(
    count: int, *, history: int = 30, window_days: float = 14, seed: int = SEED + 1
) -> list[tuple[Any, list[Any]]]:
    """``count`` evaluations: a new run or pain report with ``history`` earlier runs and pain
    reports of the same member, all inside ``window_days`` before it (seeded)."""
    from rules.evaluation import Fact

    rng = random.Random(seed)
    items = []
    for index in range(count):
        member = f"m{index}"
        painful_member = _maybe(rng, 0.3)
        now = T_END - dt.timedelta(minutes=rng.randint(0, 60 * 24 * 60))
        past = []
        for position in range(history):
            fact_type = "pain_report" if _maybe(rng, 0.35) else "run"
            painful = painful_member and _maybe(rng, 0.7)
            occurred_at = now - dt.timedelta(minutes=rng.randint(1, int(window_days * 24 * 60) - 1))
            past.append(
                Fact(
                    id=f"{member}.h{position}",
                    type=fact_type,
                    occurred_at=occurred_at,
                    data=event_data(rng, fact_type, painful=painful),
                    group=member,
                )
            )
        fact_type = "pain_report" if _maybe(rng, 0.4) else "run"
        new = Fact(
            id=f"{member}.new",
            type=fact_type,
            occurred_at=now,
            data=event_data(rng, fact_type, painful=painful_member and _maybe(rng, 0.7)),
            group=member,
        )
        items.append((new, past))
    return items


# -- timing and tables ------------------------------------------------------------------
def best_of(repeats: int, work: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``work`` ``repeats`` times; the shortest wall time (s) and the last result."""
    best = float("inf")
    result = None
    for _ in range(repeats):
        started = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - started)
    return best, result


def fmt_rate(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}"


def fmt_ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}x"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str = "") -> str:
    """A markdown table, padded so it also reads well in a terminal."""
    rows = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=False)) + " |"

    out = []
    if title:
        out.append(f"\n### {title}\n")
    out.append(line(headers))
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    out.extend(line(r) for r in rows)
    return "\n".join(out)


def save_result(name: str, payload: Mapping[str, Any]) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path


def load_result(name: str) -> dict[str, Any] | None:
    path = RESULTS_DIR / f"{name}.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None


# -- isolated measurements --------------------------------------------------------------
class Outcome:
    """What a measurement in a child process came back with."""

    def __init__(self) -> None:
        self.passes: list[float] = []  # seconds of each complete timed pass
        self.fired: set | None = None
        self.extra: dict[str, Any] = {}
        self.error: str = ""  # "SIGSEGV" or an exception, when the child failed
        self.progress: tuple[int, float] = (0, 0.0)  # evaluations done and seconds, in the failed pass
        self.rss_mb: float | None = None

    @property
    def ok(self) -> bool:
        return not self.error and self.fired is not None

    def rate(self, count: int) -> float | None:
        if self.passes:
            return count / min(self.passes)
        done, seconds = self.progress
        return done / seconds if done and seconds else None


def run_isolated(work: Callable[[Callable[..., None]], Any], *, timeout: float = 600.0) -> Outcome:
    """Run ``work(send)`` in a forked child, so a crash of the C engine (it happens: see the
    report) costs one measurement, not the whole benchmark. ``send(kind, *values)`` streams
    results back: ("pass", seconds), ("progress", done, seconds), ("fired", set),
    ("extra", dict)."""
    import pickle
    import signal
    import struct

    from django.db import connections

    connections.close_all()  # the child opens its own
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        # The parent's objects (all the generated events) stay out of the child's garbage
        # collections: without this, every full collection walks them (and copies their pages),
        # which penalised the contenders that allocate most.
        import gc

        gc.freeze()
        os.close(read_end)
        out = os.fdopen(write_end, "wb", buffering=0)

        def send(kind: str, *values: Any) -> None:
            data = pickle.dumps((kind, values), protocol=pickle.HIGHEST_PROTOCOL)
            out.write(struct.pack("!I", len(data)) + data)

        code = 0
        try:
            work(send)
            send("rss", rss_mb())
        except BaseException as exc:
            import traceback

            send("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}")
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    os.close(write_end)
    outcome = Outcome()
    started = time.monotonic()
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        buffer = b""
        while True:
            chunk = pipe.read(65536)
            if not chunk:
                break
            buffer += chunk
            while len(buffer) >= 4:
                (size,) = struct.unpack("!I", buffer[:4])
                if len(buffer) < 4 + size:
                    break
                kind, values = pickle.loads(buffer[4 : 4 + size])  # noqa: S301 (our own forked child)
                buffer = buffer[4 + size :]
                if kind == "pass":
                    outcome.passes.append(values[0])
                elif kind == "progress":
                    outcome.progress = (values[0], values[1])
                elif kind == "fired":
                    outcome.fired = values[0]
                elif kind == "extra":
                    outcome.extra.update(values[0])
                elif kind == "rss":
                    outcome.rss_mb = values[0]
                elif kind == "error":
                    outcome.error = values[0]
            if time.monotonic() - started > timeout:
                os.kill(pid, signal.SIGKILL)
                outcome.error = f"killed after {timeout:.0f} s"
                break
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) and not outcome.error:
        number = os.WTERMSIG(status)
        try:
            outcome.error = signal.Signals(number).name
        except ValueError:
            outcome.error = f"signal {number}"
    elif os.WIFEXITED(status) and os.WEXITSTATUS(status) and not outcome.error:
        outcome.error = f"exit status {os.WEXITSTATUS(status)}"
    return outcome
