"""Webhooks to the Standard Webhooks specification (https://www.standardwebhooks.com/).

A gym registers endpoints for the changes it wants pushed: ``advice.created``,
``advice.withdrawn``, ``member.referral_changed``, ``member.erased``. Every change writes one
message per subscribed endpoint into an outbox (``WebhookMessage``) in the same transaction as
the change itself, so no change is missed and none is sent for a change that was rolled back.
Queue workers deliver the outbox (``deliveries_run``): a JSON POST signed with the endpoint's
secret (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``), retried with exponential
backoff for 24 hours; an endpoint failing that long is marked failing, and disabled after 5
failing days. Each attempt is kept, and a message can be sent again from the admin. A
receiver de-duplicates by ``webhook-id``, which stays the same across retries.

Endpoints must be HTTPS on a public address (no server-side request forgery): loopback and
private addresses only when ``DJANGO_DEBUG`` is on or ``WEBHOOKS_ALLOW_HTTP=true`` (for local
use), link-local ones (169.254.0.0/16, cloud metadata) never; checked at registration and again
at every delivery.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import logging
import secrets
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from . import metrics
from .models import Advice, Gym, Member, WebhookAttempt, WebhookEndpoint, WebhookMessage
from .representations import advice_representation, datetime_text

logger = logging.getLogger(__name__)

EVENT_TYPES = ("advice.created", "advice.withdrawn", "member.referral_changed", "member.erased")
SECRET_PREFIX = "whsec_"  # noqa: S105 - the secrets' prefix, not a secret
SECRET_OVERLAP = dt.timedelta(hours=24)  # a rotated secret still signs, beside the new one
TIMEOUT_SECONDS = 10
RETRY_FOR = dt.timedelta(hours=24)
DISABLE_AFTER = dt.timedelta(days=5)
FIRST_RETRY = dt.timedelta(seconds=5)
MAX_RETRY = dt.timedelta(hours=1)
BATCH = 50  # messages a worker claims at a time

# What a gym's developer reads when an endpoint is refused.
MSG_URL_SCHEME = "Use an https:// address for the endpoint."
MSG_URL_HOST = "The endpoint's address has no host name."
MSG_URL_UNRESOLVED = "The endpoint's host name does not resolve: {host}."
MSG_URL_PRIVATE = "The endpoint's address is private or loopback ({address}); webhooks go to public addresses only."
MSG_URL_LINK_LOCAL = "The endpoint's address is link-local ({address}), which is never allowed."
MSG_EVENTS_EMPTY = "Name at least one event to send: {choices}."
MSG_EVENT_UNKNOWN = "“{value}” is not an event a webhook sends. Choose from: {choices}."


class EndpointRefused(ValueError):
    """An endpoint address or subscription that cannot be used; ``errors`` by field."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(m for ms in errors.values() for m in ms))
        self.errors = errors


def _allow_local() -> bool:
    return bool(settings.DEBUG) or str(getattr(settings, "WEBHOOKS_ALLOW_HTTP", "")).lower() in ("1", "true", "yes")


def url_problem(url: str) -> str | None:
    """Why ``url`` may not receive webhooks now, or None: the scheme, the host, and every address
    the host resolves to (a name that resolves to a private address is refused like the address)."""
    parts = urlsplit(url)
    local = _allow_local()
    if parts.scheme != "https" and not (local and parts.scheme == "http"):
        return MSG_URL_SCHEME
    if not parts.hostname:
        return MSG_URL_HOST
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except (socket.gaierror, UnicodeError):
        return MSG_URL_UNRESOLVED.format(host=parts.hostname)
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        mapped = getattr(address, "ipv4_mapped", None)
        address = mapped or address
        if address.is_link_local:
            return MSG_URL_LINK_LOCAL.format(address=address)
        if (address.is_private or address.is_loopback or address.is_reserved or address.is_multicast) and not local:
            return MSG_URL_PRIVATE.format(address=address)
        if address.is_unspecified:
            return MSG_URL_PRIVATE.format(address=address)
    return None


def secret_new() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def events_clean(events: Any) -> list[str]:
    choices = ", ".join(EVENT_TYPES)
    if not isinstance(events, list) or not events:
        raise EndpointRefused({"events": [MSG_EVENTS_EMPTY.format(choices=choices)]})
    unknown = [e for e in events if e not in EVENT_TYPES]
    if unknown:
        raise EndpointRefused({"events": [MSG_EVENT_UNKNOWN.format(value=unknown[0], choices=choices)]})
    return [e for e in EVENT_TYPES if e in events]


def endpoint_register(*, gym: Gym, url: str, events: Any, description: str = "") -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it with its secret, shown only this once."""
    problem = url_problem(url)
    if problem:
        raise EndpointRefused({"url": [problem]})
    cleaned = events_clean(events)
    secret = secret_new()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            gym=gym, url=url, events=cleaned, secret=secret, description=description[:200]
        )
        _gym_flag(gym)
    return endpoint, secret


def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    with transaction.atomic():
        gym = endpoint.gym
        endpoint.delete()
        _gym_flag(gym)


def endpoint_secret_rotate(*, endpoint: WebhookEndpoint) -> str:
    """A new secret for the endpoint; deliveries are signed with both for ``SECRET_OVERLAP``."""
    secret = secret_new()
    endpoint.previous_secret, endpoint.secret = endpoint.secret, secret
    endpoint.secret_rotated_at = timezone.now()
    endpoint.save(update_fields=["previous_secret", "secret", "secret_rotated_at"])
    return secret


def endpoint_enable(*, endpoint: WebhookEndpoint) -> None:
    """Enable a disabled endpoint again (an operator's or clinician's choice in the admin)."""
    with transaction.atomic():
        endpoint.disabled_at = endpoint.failing_since = None
        endpoint.save(update_fields=["disabled_at", "failing_since"])
        _gym_flag(endpoint.gym)


def _gym_flag(gym: Gym) -> None:
    """Keep the gym's flag that it has active endpoints (read with the gym on every request, so
    that a gym without webhooks costs its ingests no query)."""
    active = WebhookEndpoint.objects.filter(gym=gym, disabled_at__isnull=True).exists()
    if gym.webhooks_active != active:
        Gym.objects.filter(pk=gym.pk).update(webhooks_active=active)
        gym.webhooks_active = active


# -- the outbox --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Change:
    """One change to push: its event type, the gym, and the payload's ``data``."""

    type: str
    gym_id: int
    data: dict[str, Any]


def _max_age() -> dt.timedelta:
    return dt.timedelta(days=int(getattr(settings, "WEBHOOK_MAX_AGE_DAYS", 7)))


def recent(moment: dt.datetime) -> bool:
    """Whether a change about ``moment`` is pushed: within the last ``WEBHOOK_MAX_AGE_DAYS`` days,
    so that importing a history does not flood a gym."""
    return moment >= timezone.now() - _max_age()


def advice_changes(*, created: Iterable[Advice], withdrawn: Iterable[Advice]) -> list[Change]:
    """The advice changes worth pushing: about recent events only."""
    changes = [Change("advice.created", a.gym_id, advice_representation(a)) for a in created if recent(a.occurred_at)]
    changes += [
        Change("advice.withdrawn", a.gym_id, advice_representation(a)) for a in withdrawn if recent(a.occurred_at)
    ]
    return changes


def outbox_add(changes: Sequence[Change]) -> int:
    """Write a message per change and subscribed active endpoint (call in the change's own
    transaction); returns how many."""
    if not changes:
        return 0
    gyms = {change.gym_id for change in changes}
    endpoints = list(WebhookEndpoint.objects.filter(gym_id__in=gyms, disabled_at__isnull=True))
    now = timezone.now()
    messages = [
        WebhookMessage(
            endpoint=endpoint,
            msg_id=f"msg_{uuid.uuid4().hex}",
            event_type=change.type,
            payload={"type": change.type, "timestamp": now.isoformat().replace("+00:00", "Z"), "data": change.data},
            next_attempt_at=now,
        )
        for change in changes
        for endpoint in endpoints
        if endpoint.gym_id == change.gym_id and change.type in endpoint.events
    ]
    WebhookMessage.objects.bulk_create(messages)
    if messages:
        transaction.on_commit(_deliveries_soon)
    return len(messages)


def _deliveries_soon() -> None:
    """Ask a queue worker to deliver now (the periodic run catches anything this misses)."""
    try:
        deliver_task.enqueue()
    except Exception:  # the periodic delivery run still comes
        logger.warning("webhook deliveries not queued now; the periodic run sends them", exc_info=True)


# -- delivery ------------------------------------------------------------------------------------------
def _signature(endpoint: WebhookEndpoint, msg_id: str, at: dt.datetime, body: bytes) -> str:
    signatures = [Webhook(endpoint.secret).sign(msg_id, at, body)]
    rotated = endpoint.secret_rotated_at
    if endpoint.previous_secret and rotated is not None and at - rotated < SECRET_OVERLAP:
        signatures.append(Webhook(endpoint.previous_secret).sign(msg_id, at, body))
    return " ".join(signatures)


def _backoff(attempts: int) -> dt.timedelta:
    return min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), MAX_RETRY)


def deliveries_run(*, limit: int | None = None) -> dict[str, int]:
    """Deliver every message that is due, oldest first (a queue job; any number of workers may run
    it at once: each claims its messages). Returns counts by outcome."""
    counts = {"delivered": 0, "failed": 0, "given_up": 0}
    done = 0
    while limit is None or done < limit:
        claimed = _claim()
        if not claimed:
            break
        for message in claimed:
            outcome = deliver(message)
            counts[outcome] += 1
            done += 1
    return counts


def _claim() -> list[WebhookMessage]:
    """Due messages, claimed by pushing their next attempt a little ahead (so another worker
    skips them while this one sends them)."""
    now = timezone.now()
    with transaction.atomic():
        due = (
            WebhookMessage.objects.select_for_update(skip_locked=True)
            .filter(delivered_at__isnull=True, given_up_at__isnull=True, next_attempt_at__lte=now)
            .filter(endpoint__disabled_at__isnull=True)
            .order_by("next_attempt_at", "id")[:BATCH]
        )
        claimed = list(due.select_related("endpoint"))
        WebhookMessage.objects.filter(pk__in=[m.pk for m in claimed]).update(
            next_attempt_at=now + dt.timedelta(seconds=TIMEOUT_SECONDS * 3)
        )
    return claimed


def deliver(message: WebhookMessage) -> str:
    """Send one message once; record the attempt; schedule the next or give up."""
    endpoint = message.endpoint
    at = timezone.now()
    body = json.dumps(message.payload, separators=(",", ":"), ensure_ascii=False).encode()
    status, error = None, ""
    started = time.monotonic()
    problem = url_problem(endpoint.url)
    if problem:
        error = problem
    else:
        request = urllib.request.Request(
            endpoint.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "rlbp-webhooks",
                "webhook-id": message.msg_id,
                "webhook-timestamp": str(int(at.timestamp())),
                "webhook-signature": _signature(endpoint, message.msg_id, at, body),
            },
        )
        try:
            with _no_redirects().open(request, timeout=TIMEOUT_SECONDS) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status, error = exc.code, f"HTTP {exc.code}"
        except (OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:1000]
    ok = status is not None and 200 <= status < 300
    WebhookAttempt.objects.create(
        message=message,
        at=at,
        status_code=status,
        error="" if ok else error,
        duration_ms=int((time.monotonic() - started) * 1000),
    )
    attempts = message.attempts + 1
    if ok:
        WebhookMessage.objects.filter(pk=message.pk).update(attempts=attempts, delivered_at=timezone.now())
        if endpoint.failing_since is not None:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
        metrics.webhook_delivered(outcome="delivered")
        return "delivered"
    if at - message.created_at >= RETRY_FOR:
        WebhookMessage.objects.filter(pk=message.pk).update(attempts=attempts, given_up_at=at)
        _endpoint_failing(endpoint, at)
        metrics.webhook_delivered(outcome="given_up")
        return "given_up"
    WebhookMessage.objects.filter(pk=message.pk).update(attempts=attempts, next_attempt_at=at + _backoff(attempts))
    metrics.webhook_delivered(outcome="failed")
    return "failed"


def _endpoint_failing(endpoint: WebhookEndpoint, at: dt.datetime) -> None:
    """A message given up: the endpoint is failing from now on (if it was not); after
    ``DISABLE_AFTER`` of failing, it is disabled."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=at)
    endpoint.refresh_from_db(fields=["failing_since"])
    if endpoint.failing_since is not None and at - endpoint.failing_since >= DISABLE_AFTER:
        with transaction.atomic():
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(disabled_at=at)
            _gym_flag(endpoint.gym)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect could point anywhere (a private address): a delivery never follows one."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _no_redirects() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirect)


def message_resend(*, message: WebhookMessage) -> None:
    """Send a message again (from the admin): due now, with the same ``webhook-id``."""
    WebhookMessage.objects.filter(pk=message.pk).update(
        next_attempt_at=timezone.now(), delivered_at=None, given_up_at=None
    )
    transaction.on_commit(_deliveries_soon)


def messages_prune(*, older_than: dt.timedelta = dt.timedelta(days=30)) -> dict[str, int]:
    """Forget delivered or given-up messages (and their attempts) older than ``older_than``."""
    cutoff = timezone.now() - older_than
    old = WebhookMessage.objects.filter(created_at__lt=cutoff).filter(
        Q(delivered_at__isnull=False) | Q(given_up_at__isnull=False)
    )
    forgotten, _ = old.delete()
    return {"forgotten": forgotten}


def _deliver_task_run() -> dict[str, int]:
    return deliveries_run()


try:  # Django 6 has the tasks framework built in; on 5.2 it is the django-tasks backport.
    from django.tasks import task
except ImportError:  # pragma: no cover - depends on the Django version
    from django_tasks import task

deliver_task = task()(_deliver_task_run)

__all__ = [
    "EVENT_TYPES",
    "Change",
    "EndpointRefused",
    "advice_changes",
    "deliver",
    "deliveries_run",
    "endpoint_delete",
    "endpoint_register",
    "endpoint_secret_rotate",
    "message_resend",
    "outbox_add",
    "url_problem",
]


def member_changes(*, members: Iterable[tuple[Member, dict[str, Any] | None]], kind: str) -> list[Change]:
    """``member.referral_changed`` (with the referral now in force, or null) or ``member.erased``."""
    return [
        Change(kind, member.gym_id, {"member": member.external_id, "referral": referral})
        for member, referral in members
    ]


def referral_data(*, since: Any, rule_key: str, rule_name: str, event: str | None) -> dict[str, Any]:
    return {"since": datetime_text(since), "rule": {"key": rule_key, "name": rule_name}, "event": event}
