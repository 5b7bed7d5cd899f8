"""What a log line knows of its request: request id, gym, member, event, ruleset version.

The request middleware starts a context per request; the API and the services add to it
as they learn more (``log_context_add``, or ``log_context`` for a block). The filter on the
console handler copies the context onto every record, so any logger's line carries it: as
fields of the JSON object with ``LOG_FORMAT=json``, as ``key=value`` pairs in plain text.
A context variable, not a thread-local, so it is right under threads and async alike.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

CONTEXT_FIELDS = ("request_id", "gym", "member", "event", "ruleset_version")

_OUTSIDE: dict[str, Any] = {}  # never mutated
_context: ContextVar[dict[str, Any]] = ContextVar("log_context", default=_OUTSIDE)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` (None: unknown, left out) to log lines within the block."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def log_context_add(**fields: Any) -> None:
    """Add ``fields`` until the enclosing ``log_context`` (the request's) ends; outside one,
    nothing (they would otherwise stick to every later line of the thread)."""
    current = _context.get()
    if current is not _OUTSIDE:
        _context.set({**current, **{k: v for k, v in fields.items() if v is not None}})


class LogContextFilter(logging.Filter):
    """Copies the context onto the record: one attribute per field, and ``context`` for text."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _context.get()
        for name in CONTEXT_FIELDS:
            if name in fields and not hasattr(record, name):
                setattr(record, name, fields[name])
        record.context = "".join(f" {name}={fields[name]}" for name in CONTEXT_FIELDS if name in fields)
        return True


class JsonFormatter(_JsonFormatter):
    """One JSON object per line: timestamp, level, logger, message, then the context and extras."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", "{levelname}{name}{message}")
        kwargs.setdefault("style", "{")
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, "context"])
        kwargs.setdefault("timestamp", True)  # ISO 8601, UTC
        super().__init__(*args, **kwargs)


def json_everywhere() -> None:
    """With ``LOG_FORMAT=json``, the lines Python itself would print go through logging too:
    warnings (``py.warnings``) and an exception nothing caught, which would otherwise end a
    process with a plain-text traceback."""
    logging.captureWarnings(True)

    def excepthook(kind: type[BaseException], value: BaseException, traceback: Any) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, value, traceback)
            return
        logging.getLogger("uncaught").critical("Uncaught exception", exc_info=(kind, value, traceback))

    sys.excepthook = excepthook
