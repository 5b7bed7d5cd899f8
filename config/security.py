"""Login lockout glue for django-axes: who a login attempt comes from, and the page a locked-out
login gets.

``config/settings.py`` names these in ``AXES_CLIENT_IP_CALLABLE`` and ``AXES_LOCKOUT_CALLABLE``.
The address is ours rather than axes' django-ipware support because the proxy in front is the
operator's to describe (``DJANGO_CLIENT_IP_HEADER``, ``DJANGO_PROXY_COUNT``), and a header a
client can write itself must never decide whose failures count.
"""

from __future__ import annotations

import ipaddress
import math

from axes.helpers import get_client_username, get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import admin
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

LOCKED_OUT_TITLE = "Too many failed logins"
LOCKED_OUT_TEMPLATE = "admin/locked_out.html"


def client_ip(request: HttpRequest) -> str | None:
    """The address a request came from.

    ``REMOTE_ADDR`` by default. Behind proxies (``CLIENT_IP_HEADER`` set, e.g. to
    ``HTTP_X_FORWARDED_FOR``), the address the outermost of the ``PROXY_COUNT`` trusted proxies
    saw: that many entries from the right of the header, since entries further left are
    whatever the client sent. A missing or malformed header falls back to ``REMOTE_ADDR``.
    """
    remote = request.META.get("REMOTE_ADDR")
    header = getattr(settings, "CLIENT_IP_HEADER", "")
    if not header:
        return remote
    count = max(1, getattr(settings, "PROXY_COUNT", 1))
    entries = [entry.strip() for entry in request.META.get(header, "").split(",") if entry.strip()]
    if len(entries) < count:
        return remote
    candidate = entries[-count]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


def login_locked_out(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """The admin-styled page a locked-out login gets (429), saying when to try again."""
    username = get_client_username(request, credentials) or ""
    cool_off = get_cool_off(request)
    until = None
    if cool_off is not None:
        last = AccessAttempt.objects.filter(
            username=username, ip_address=getattr(request, "axes_ip_address", None)
        ).aggregate(last=Max("attempt_time"))["last"]
        until = (last or timezone.now()) + cool_off
    minutes = math.ceil(max(0.0, (until - timezone.now()).total_seconds()) / 60) if until else None
    context = {
        **admin.site.each_context(request),
        "title": LOCKED_OUT_TITLE,
        "username": username,
        "until": until,
        "minutes": minutes,
        "failure_limit": settings.AXES_FAILURE_LIMIT,
    }
    return render(request, LOCKED_OUT_TEMPLATE, context, status=settings.AXES_HTTP_RESPONSE_CODE)
