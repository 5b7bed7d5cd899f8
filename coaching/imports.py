"""Importing a gym's history of events from a file: CSV or JSON Lines, one event per line.

Every line goes through the same path as ``POST /api/v1/events/`` with an array
(``services.events_ingest_batch``), in chunks of ``CHUNK_SIZE`` lines in file order, so an
import validates, stores and judges exactly as the API does and is idempotent by
``external_id``: a line already imported with the same content is a repeat (nothing
stored), one with different content is a bad line (the API's 409). The file is streamed:
only one chunk is held in memory, whatever its length.

A bad line never stops the good ones; each is reported with its line number (1 = the first
line of the file, the CSV header included) and the reason, in the API's words.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.db import transaction

from rules.registry import BOOLEAN, INTEGER, NUMBER

from . import metrics
from .catalog import FACT_TYPES
from .models import EventImport, Gym
from .services import events_ingest_batch
from .validation import json_number

CSV = "csv"
JSONL = "jsonl"
FORMATS = (CSV, JSONL)
FORMAT_LABELS = {CSV: "CSV", JSONL: "JSON Lines"}
EXTENSIONS = {".csv": CSV, ".jsonl": JSONL, ".ndjson": JSONL, ".json": JSONL}
# Lines per call of events_ingest_batch: each call reads and judges every touched member once, so
# larger chunks do that less often (docs/benchmarks.md: ``python -m bench.history``).
CHUNK_SIZE = 10_000
# An upload in the admin is stored in the database until a worker has imported it.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
# A file that is mostly bad lines would otherwise fill a database row with reasons.
MAX_BAD_LINES_KEPT = 10_000
IMPORT_JOB = "import-events"

TOP_LEVEL_COLUMNS = ("external_id", "member", "type", "occurred_at")
TOP_LEVEL_LABELS = {
    "external_id": "Event id",
    "member": "Member id",
    "type": "Event type",
    "occurred_at": "When it happened",
    "data": "Data",
}
DATA_COLUMN = "data"
DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
TRUE_WORDS = frozenset({"true", "yes", "1"})
FALSE_WORDS = frozenset({"false", "no", "0"})

# What people read, in the command's output, the report file and the admin (tests reuse these).
FORMAT_UNKNOWN = "Cannot tell the format from the file name {name!r}: name it .csv, .jsonl, .ndjson or .json."
HEADER_MISSING = "The CSV file is empty: its first line must name the columns ({columns}, then one per data field)."
HEADER_COLUMNS_MISSING = "The CSV header lacks the column(s) {missing}: it needs {columns}."
HEADER_COLUMNS_UNKNOWN = (
    "The CSV header names column(s) that are no field of any event type: {unknown}. "
    "Columns are {columns}, data (a JSON object) and the fields of the event types."
)
HEADER_COLUMNS_TWICE = "The CSV header names the column(s) {twice} more than once."
JSON_ARRAY = "This is a JSON array; write one event object per line (JSON Lines) instead."
NOT_CSV = "Not a valid CSV row: {error}."
EMPTY_LINE = "Empty line: there is no event on it."
NOT_UTF8 = "Not UTF-8 text: save the file as UTF-8."
NOT_JSON = "Not valid JSON: {error}."
DATA_NOT_JSON = "The data column is not a valid JSON object: {error}."
TOO_DEEP = "nested too deeply to be an event"
DATA_NOT_OBJECT = "The data column must hold a JSON object, such as {example}."
GIVEN_TWICE = "Given both in its own column and in the data column."
TOO_MANY_CELLS = "This row has {cells} cells, but the header names {columns} columns."


class ImportFileError(Exception):
    """The file cannot be read as a history of events at all (nothing was imported)."""


@dataclass(frozen=True)
class BadLine:
    line: int
    reason: str


@dataclass
class ImportReport:
    lines: int = 0  # lines read, the CSV header included
    created: int = 0
    repeated: int = 0
    bad_count: int = 0
    bad: list[BadLine] = field(default_factory=list)  # at most MAX_BAD_LINES_KEPT of them, by line

    def bad_add(self, line: int, reason: str) -> None:
        self.bad_count += 1
        if len(self.bad) < MAX_BAD_LINES_KEPT:
            self.bad.append(BadLine(line, reason))


def format_for(name: str) -> str:
    """The format a file's name says it holds; ``ImportFileError`` when it says none."""
    found = EXTENSIONS.get(Path(name).suffix.lower())
    if found is None:
        raise ImportFileError(FORMAT_UNKNOWN.format(name=Path(name).name))
    return found


def lines_count(stream: IO[bytes]) -> int:
    """The number of lines in a binary stream, read in blocks (for a progress bar's total);
    the stream is rewound."""
    count, last = 0, b"\n"
    for block in iter(lambda: stream.read(1 << 20), b""):
        count += block.count(b"\n")
        last = block[-1:]
    stream.seek(0)
    return count + (last != b"\n")


def events_import(
    *,
    gym: Gym,
    lines: Iterable[bytes],
    format: str,
    progress: Callable[[int], None] | None = None,
    chunk_size: int | None = None,
) -> ImportReport:
    """Import the events on ``lines`` (a binary file's lines) for ``gym``; returns the report.

    ``progress`` is called with the number of lines read so far after each chunk. Raises
    ``ImportFileError`` (before anything is stored) when a CSV header is unusable or a JSON
    file is one array.
    """
    chunk_size = chunk_size or CHUNK_SIZE
    report = ImportReport()
    source = _Lines(lines, report)
    parsed = _csv_events(source, report) if format == CSV else _jsonl_events(source, report)
    chunk: list[tuple[int, Any]] = []
    for line, payload in parsed:
        chunk.append((line, payload))
        if len(chunk) >= chunk_size:
            _chunk_ingest(gym, chunk, report)
            chunk = []
            if progress is not None:
                progress(report.lines)
    if chunk:
        _chunk_ingest(gym, chunk, report)
    if progress is not None:
        progress(report.lines)
    report.bad.sort(key=lambda bad: bad.line)  # lines that could not even be parsed came first
    metrics.events_imported(created=report.created, repeated=report.repeated, bad=report.bad_count)
    return report


def _chunk_ingest(gym: Gym, chunk: list[tuple[int, Any]], report: ImportReport) -> None:
    items = events_ingest_batch(gym=gym, payloads=[payload for _line, payload in chunk])
    for (line, _payload), item in zip(chunk, items, strict=True):
        if item.status == 201:
            report.created += 1
        elif item.status == 200:
            report.repeated += 1
        else:  # 400 invalid, 409 a known external_id with different content
            report.bad_add(line, errors_in_words(item.errors or {}))


def errors_in_words(errors: dict[str, list[str]]) -> str:
    """The API's errors in a sentence per field, each named by its label and the name in the
    file: "Pain during the run (pain_during): Must be at most 10."."""
    return " ".join(
        " ".join(messages) if path == "non_field_errors" else f"{_field_words(path)}: {' '.join(messages)}"
        for path, messages in errors.items()
    )


def _field_words(path: str) -> str:
    name = path.removeprefix("data.")
    label = TOP_LEVEL_LABELS.get(path) if path in TOP_LEVEL_LABELS else _DATA_LABELS.get(name)
    return f"{label} ({name})" if label else name


class _Lines:
    """A binary file's lines as text, counting them; lines that are not UTF-8 are reported and
    skipped. ``first`` is the number of the first line handed out since it was last reset (a CSV
    record may span several lines)."""

    def __init__(self, lines: Iterable[bytes], report: ImportReport) -> None:
        self.lines = lines
        self.report = report
        self.first: int | None = None

    def __iter__(self) -> Iterator[str]:
        for number, raw in enumerate(self.lines, start=1):
            self.report.lines = number
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                self.report.bad_add(number, NOT_UTF8)
                continue
            if self.first is None:
                self.first = number
            yield text

    def record_start(self) -> int:
        first, self.first = self.first, None
        return first or self.report.lines


def _jsonl_events(source: _Lines, report: ImportReport) -> Iterator[tuple[int, Any]]:
    for text in source:
        line = source.record_start()
        if not text.strip():
            report.bad_add(line, EMPTY_LINE)
            continue
        try:
            payload = json.loads(text, parse_float=json_number)
        except ValueError as exc:
            if line == 1 and text.lstrip().startswith("["):
                raise ImportFileError(JSON_ARRAY) from None
            report.bad_add(line, NOT_JSON.format(error=_json_error(exc)))
            continue
        except RecursionError:
            report.bad_add(line, NOT_JSON.format(error=TOO_DEEP))
            continue
        if line == 1 and isinstance(payload, list):
            raise ImportFileError(JSON_ARRAY)
        yield line, payload


def _json_error(exc: ValueError) -> str:
    return exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)


# Every field of any event type; each one's label; its spec in each event type.
_FIELD_NAMES = {spec.name for _label, specs in FACT_TYPES.values() for spec in specs}
_DATA_LABELS = {spec.name: spec.label for _label, specs in FACT_TYPES.values() for spec in specs}
_SPECS = {(event_type, spec.name): spec for event_type, (_label, specs) in FACT_TYPES.items() for spec in specs}


def _csv_events(source: _Lines, report: ImportReport) -> Iterator[tuple[int, Any]]:
    reader = csv.reader(source)
    header = next(reader, None)
    source.record_start()
    columns = [name.strip() for name in header or []]
    _header_check(columns)
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # a NUL byte, a field over csv's size limit
            report.bad_add(source.record_start(), NOT_CSV.format(error=exc))
            continue
        line = source.record_start()
        if not any(cell.strip() for cell in cells):
            report.bad_add(line, EMPTY_LINE)
            continue
        if len(cells) > len(columns) and any(cell.strip() for cell in cells[len(columns) :]):
            report.bad_add(line, TOO_MANY_CELLS.format(cells=len(cells), columns=len(columns)))
            continue
        payload, problem = _csv_payload(dict(zip(columns, cells, strict=False)))
        if problem:
            report.bad_add(line, problem)
        else:
            yield line, payload


def _header_check(columns: list[str]) -> None:
    required = ", ".join(TOP_LEVEL_COLUMNS)
    if not any(columns):
        raise ImportFileError(HEADER_MISSING.format(columns=required))
    missing = [name for name in TOP_LEVEL_COLUMNS if name not in columns]
    if missing:
        raise ImportFileError(HEADER_COLUMNS_MISSING.format(missing=", ".join(missing), columns=required))
    known = {*TOP_LEVEL_COLUMNS, DATA_COLUMN, *_FIELD_NAMES}
    unknown = [name for name in columns if name not in known]
    if unknown:
        raise ImportFileError(HEADER_COLUMNS_UNKNOWN.format(unknown=", ".join(unknown), columns=required))
    twice = sorted({name for name in columns if columns.count(name) > 1})
    if twice:
        raise ImportFileError(HEADER_COLUMNS_TWICE.format(twice=", ".join(twice)))


def _csv_payload(row: dict[str, str]) -> tuple[dict[str, Any], str | None]:
    """The API event a CSV row stands for: empty cells are fields not sent; the others are
    converted to their field's kind where they can be (what cannot is sent as text, so the
    API's own message names the problem)."""
    payload: dict[str, Any] = {}
    for name in TOP_LEVEL_COLUMNS:
        value = (row.get(name) or "").strip()
        if value:
            payload[name] = value
    data: dict[str, Any] = {}
    raw_data = (row.get(DATA_COLUMN) or "").strip()
    if raw_data:
        try:
            data = json.loads(raw_data, parse_float=json_number)
        except ValueError as exc:
            return payload, DATA_NOT_JSON.format(error=_json_error(exc))
        except RecursionError:
            return payload, DATA_NOT_JSON.format(error=TOO_DEEP)
        if not isinstance(data, dict):
            return payload, DATA_NOT_OBJECT.format(example='{"distance_km": 5}')
    event_type = payload.get("type", "")
    for name, cell in row.items():
        value = cell.strip()
        if name in TOP_LEVEL_COLUMNS or name == DATA_COLUMN or not value:
            continue
        if name in data:
            return payload, f"{name}: {GIVEN_TWICE}"
        spec = _SPECS.get((event_type, name))
        data[name] = _converted(spec.kind, value) if spec else value
    payload["data"] = data
    return payload, None


def _converted(kind: str, value: str) -> Any:
    if kind == BOOLEAN:
        word = value.lower()
        return True if word in TRUE_WORDS else False if word in FALSE_WORDS else value
    # Plain decimals only: Python's int() and float() would also take "1_000", "nan" and "inf".
    if kind in (NUMBER, INTEGER) and DECIMAL.fullmatch(value):
        return int(value) if value.lstrip("+-").isdigit() else json_number(value)
    return value


# -- imports uploaded in the admin, run by a worker ---------------------------------------------
def file_check(*, first_line: bytes, format: str) -> None:
    """Raise ``ImportFileError`` if a file starting with ``first_line`` cannot be imported at all
    (so an upload is refused at once rather than failing later on a worker)."""
    try:
        text = first_line.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportFileError(NOT_UTF8) from None
    if format == CSV:
        _header_check([name.strip() for name in next(csv.reader([text]), [])])
    elif text.lstrip().startswith("["):
        raise ImportFileError(JSON_ARRAY)


def event_import_start(*, gym: Gym, name: str, content: bytes, format: str, user: Any = None) -> EventImport:
    """Store an uploaded file and queue its import (``event_import_run`` on a worker)."""
    from rules.jobs import job_start

    with transaction.atomic():
        upload = EventImport.objects.create(
            gym=gym,
            file_name=name[:200],
            format=format,
            content=content,
            size=len(content),
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        upload.job = job_start(IMPORT_JOB, title=upload.job_title, params={"import": upload.pk}, user=user)
        upload.save(update_fields=["job"])
    return upload


def event_import_restart(*, upload: EventImport, user: Any = None) -> EventImport:
    """Queue an import again whose worker stopped before the end (repeats store nothing)."""
    from rules.jobs import job_start

    upload.job = job_start(IMPORT_JOB, title=upload.job_title, params={"import": upload.pk}, user=user)
    upload.save(update_fields=["job"])
    return upload


def event_import_run(*, upload: EventImport, progress: Callable[[int, int], None] | None = None) -> EventImport:
    """Import a stored upload and keep its report on it; the file's content is dropped once it
    has been read to the end (a file that cannot be read keeps the reason in ``problem``)."""
    content = bytes(upload.content)
    total = lines_count(io.BytesIO(content))
    try:
        report = events_import(
            gym=upload.gym,
            lines=io.BytesIO(content),
            format=upload.format,
            progress=(lambda done: progress(done, total)) if progress else None,
        )
    except ImportFileError as exc:
        upload.problem = str(exc)
    else:
        upload.lines, upload.created, upload.repeated = report.lines, report.created, report.repeated
        upload.bad_count = report.bad_count
        upload.bad_lines = [[bad.line, bad.reason] for bad in report.bad]
    upload.content = b""
    upload.finished = True
    upload.save(
        update_fields=["lines", "created", "repeated", "bad_count", "bad_lines", "problem", "content", "finished"]
    )
    return upload
