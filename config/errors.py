"""The error pages Django renders itself, outside any view: a bad Host header, a request body
over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` sent as a form, a URL nothing matches, a failure of a
middleware.

Under ``/api/`` (and for ``/healthz``) they answer JSON like every other answer there; elsewhere
Django's own pages, except that a form too large for the limit (a rule pasted with megabytes
of text) says so in words a clinician reads rather than "Bad Request (400)".
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import defaults

from coaching.api.middleware import SERVER_ERROR
from coaching.api.parsers import BODY_TOO_LARGE
from coaching.api.views import URL_NOT_FOUND as NOT_FOUND

JSON_PREFIXES = ("/api/", "/api", "/healthz", "/metrics")

BAD_REQUEST = "The request could not be read (its Host header is not one this server answers to, or it is malformed)."
FORBIDDEN = "Not allowed."
FORM_TOO_LARGE = (
    "What you sent is larger than 1 MiB, more than any page of the admin takes, so nothing was saved. "
    "Shorten the longest text (a rule's description or message) and send it again; a rule pack "
    "goes in as a file on the import page."
)


def _api(request: HttpRequest) -> bool:
    return request.path_info.startswith(JSON_PREFIXES)


def bad_request(request: HttpRequest, exception: Exception, template_name: str = "400.html") -> HttpResponse:
    too_large = isinstance(exception, RequestDataTooBig)
    if _api(request):
        if too_large:
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            return JsonResponse({"detail": BODY_TOO_LARGE.format(limit=limit)}, status=413)
        return JsonResponse({"detail": BAD_REQUEST}, status=400)
    if too_large:
        return render(request, "400_too_large.html", {"message": FORM_TOO_LARGE}, status=400)
    return defaults.bad_request(request, exception, template_name)


def permission_denied(request: HttpRequest, exception: Exception, template_name: str = "403.html") -> HttpResponse:
    if _api(request):
        return JsonResponse({"detail": FORBIDDEN}, status=403)
    return defaults.permission_denied(request, exception, template_name)


def page_not_found(request: HttpRequest, exception: Exception, template_name: str = "404.html") -> HttpResponse:
    if _api(request):
        return JsonResponse({"detail": NOT_FOUND}, status=404)
    return defaults.page_not_found(request, exception, template_name)


def server_error(request: HttpRequest, template_name: str = "500.html") -> HttpResponse:
    if _api(request):
        return JsonResponse({"detail": SERVER_ERROR}, status=500)
    return defaults.server_error(request, template_name)
