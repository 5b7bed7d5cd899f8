"""Optional error reports to Sentry, never with members' data.

Off unless ``SENTRY_DSN`` is set (``config/settings.py`` calls ``error_tracking_init``); then
every process (web, queue workers, commands) reports errors it logs or does not catch.

What a report holds is chosen field by field (``event_scrub``), not cleaned out of everything
the SDK collects: the error's type and where in the code it happened (files, functions, lines
and the source code there), the log message's template, the request's method and the route it
matched (``/api/v1/members/{member}/``, never the member's id), the request id, the product's
version and the host. Left out: exception messages (a database error quotes the values it
refused), log messages' arguments, local variables, request bodies, query strings, cookies,
headers, the user, breadcrumbs and the members, events and advice the log context names.
"""

from __future__ import annotations

from typing import Any

from config.version import VERSION

# Fields of a report kept as the SDK writes them: none of them holds data sent by a gym.
KEPT = ("event_id", "timestamp", "platform", "level", "logger", "release", "environment", "server_name", "sdk")
KEPT_CONTEXTS = ("runtime", "os", "trace")
KEPT_FRAME = (
    "filename",
    "abs_path",
    "module",
    "function",
    "lineno",
    "colno",
    "in_app",
    "context_line",
    "pre_context",
    "post_context",
)
# The log context's fields that name no member, event or advice (coaching.logs.CONTEXT_FIELDS).
KEPT_EXTRA = ("request_id", "ruleset_version")


def error_tracking_init(*, dsn: str, environment: str = "production", **options: Any) -> None:
    """Send error reports to the Sentry project of ``dsn`` (``options``: more of the SDK's own)."""
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=VERSION,
        integrations=[DjangoIntegration(transaction_style="url")],
        include_local_variables=False,
        max_request_body_size="never",
        max_breadcrumbs=0,
        traces_sample_rate=0.0,
        before_send=event_scrub,
        **options,
    )


def event_scrub(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report as it is sent: only the fields named above, whatever the SDK collected."""
    kept: dict[str, Any] = {name: event[name] for name in KEPT if name in event}
    contexts = event.get("contexts") or {}
    kept["contexts"] = {name: contexts[name] for name in KEPT_CONTEXTS if name in contexts}
    # The URL pattern a request matched (transaction_style="url"): "/api/v1/members/{member}/".
    source = str((event.get("transaction_info") or {}).get("source") or "")
    route = event.get("transaction") if source in ("route", "url") else None
    if route:
        kept["transaction"] = route
    if "exception" in event:
        kept["exception"] = {
            "values": [
                {
                    "type": value.get("type"),
                    "module": value.get("module"),
                    "mechanism": value.get("mechanism"),
                    "stacktrace": _stacktrace(value.get("stacktrace")),
                }
                for value in (event["exception"].get("values") or [])
            ]
        }
    if "threads" in event:
        kept["threads"] = {
            "values": [
                {"id": t.get("id"), "current": t.get("current"), "stacktrace": _stacktrace(t.get("stacktrace"))}
                for t in (event["threads"].get("values") or [])
            ]
        }
    logentry = event.get("logentry") or {}
    if logentry.get("message"):
        kept["logentry"] = {"message": logentry["message"]}  # the template, never its arguments
    method = (event.get("request") or {}).get("method")
    if route or method:
        kept["request"] = {name: value for name, value in (("method", method), ("url", route)) if value}
    extra = event.get("extra") or {}
    kept["extra"] = {name: extra[name] for name in KEPT_EXTRA if name in extra}
    return kept


def _stacktrace(stacktrace: dict[str, Any] | None) -> dict[str, Any] | None:
    if not stacktrace:
        return None
    frames = [{name: frame[name] for name in KEPT_FRAME if name in frame} for frame in stacktrace.get("frames") or []]
    return {"frames": frames}
