"""Every error answer under /api/ is JSON, whatever ``DJANGO_DEBUG`` says.

DRF turns its own exceptions into JSON; this catches the rest (a bug, a database that went
away or read-only) before Django renders its HTML error page, logs it, and answers in JSON:
503 with ``Retry-After`` when the database is busy or unavailable (the request can simply be
sent again: events are idempotent), 500 otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from ..database import database_unavailable

logger = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = "The database is busy or unavailable; send the same request again in a moment."
SERVER_ERROR = "Something went wrong on our side and was logged; nothing was half-stored. Try again later."
JSON_PREFIXES = ("/api/", "/healthz")


class ApiErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path_info.startswith(JSON_PREFIXES):
            return None
        if database_unavailable(exception):
            logger.warning("Database unavailable on %s: %s", request.path_info, exception)
            response = JsonResponse({"detail": DATABASE_UNAVAILABLE}, status=503)
            response["Retry-After"] = "1"
            return response
        logger.exception("Unhandled error on %s", request.path_info, exc_info=exception)
        return JsonResponse({"detail": SERVER_ERROR}, status=500)
