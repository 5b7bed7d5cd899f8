"""Request middleware: observation of every request, and JSON errors under /api/.

``RequestObservationMiddleware`` gives each request an id (the client's ``X-Request-ID`` when
it sends a sensible one, else a new one), echoed in the answer's ``X-Request-ID`` and carried
by every log line of the request; logs one line per request on the ``coaching.requests``
logger (method, path, status, duration); and counts the request for ``/metrics``.

``ApiErrorMiddleware``: every error answer under /api/ is JSON, whatever ``DJANGO_DEBUG`` says.
DRF turns its own exceptions into JSON; this catches the rest (a bug, a database that went
away or read-only) before Django renders its HTML error page, logs it, and answers in JSON:
503 naming what is wrong with the database (read-only, unreachable, busy) with a ``Retry-After``
that fits it (the request can simply be sent again: events are idempotent), 500 otherwise.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from .. import metrics
from ..internal.db.database import PROBLEM_WORDS, RETRY_AFTER, database_problem
from ..logs import log_context

logger = logging.getLogger(__name__)
request_logger = logging.getLogger("coaching.requests")

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_SHAPE = re.compile(r"[A-Za-z0-9._:@/+=-]{1,200}")
# Polled by load balancers and Prometheus every few seconds: their lines are DEBUG.
QUIET_PATHS = ("/healthz", "/metrics")

SERVER_ERROR = "Something went wrong on our side and was logged; nothing was half-stored. Try again later."
JSON_PREFIXES = ("/api/", "/healthz")


class RequestObservationMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = given if REQUEST_ID_SHAPE.fullmatch(given) else uuid.uuid4().hex
        request.request_id = request_id
        started = time.perf_counter()
        with log_context(request_id=request_id):
            response = self.get_response(request)
            duration_ms = round((time.perf_counter() - started) * 1000, 1)
            response[REQUEST_ID_HEADER] = request_id
            match = request.resolver_match
            metrics.request_observed(
                method=request.method or "", view=match.view_name if match else "unmatched", status=response.status_code
            )
            request_logger.log(
                logging.DEBUG if request.path_info.startswith(QUIET_PATHS) else logging.INFO,
                "%s %s %s %.1fms",
                request.method,
                request.get_full_path(),
                response.status_code,
                duration_ms,
                extra={
                    "method": request.method,
                    "path": request.path_info,
                    "status": response.status_code,
                    "duration_ms": duration_ms,
                },
            )
        return response


class ApiErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path_info.startswith(JSON_PREFIXES):
            return None
        problem = database_problem(exception)
        if problem is not None:
            logger.warning("Database %s on %s: %s", problem, request.path_info, exception)
            response = JsonResponse({"detail": PROBLEM_WORDS[problem]}, status=503)
            response["Retry-After"] = str(RETRY_AFTER[problem])
            return response
        logger.exception("Unhandled error on %s", request.path_info, exc_info=exception)
        return JsonResponse({"detail": SERVER_ERROR}, status=500)
