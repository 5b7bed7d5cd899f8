"""The advice as an HL7 CDS Hooks 2.0 service (https://cds-hooks.hl7.org/), so that a clinic's
record system asks for it like from any clinical decision support service.

``discovery()`` describes the one service, ``running-back-advice`` (hook ``patient-view``; the
member is ``context.patientId``); ``member_cards`` answers it with the member's current advice
of the last 30 days, most urgent first, each card with the advice's stable ``uuid`` and the
override reasons clinicians keep in the admin; ``feedback_parse`` reads the service's feedback
(accepted, or overridden with reasons), which ``services.feedback_record`` stores per advice.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .evaluation import advice_order
from .models import Advice, Gym, OverrideReason

SERVICE_ID = "running-back-advice"
HOOK = "patient-view"
CARDS_OVER = dt.timedelta(days=30)
# The code system of the override reasons (the product's own list, kept in the admin).
REASON_SYSTEM = "https://rules.invalid/override-reasons"

MSG_HOOK = "This service answers the “patient-view” hook."
MSG_HOOK_INSTANCE = "“hookInstance” must be a UUID."
MSG_PATIENT = "“context.patientId” must name the member (1 to 100 characters, no control characters)."
MSG_USER = "“context.userId” must be text, such as Practitioner/123."
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
MSG_FEEDBACK_LIST = "Send {“feedback”: [...]}, one entry per card acted on."
MSG_CARD = "“card” must be the uuid of a card this service gave."
MSG_OUTCOME = "“outcome” must be “accepted” or “overridden”."
MSG_REASONS_LIST = "Must be a list of override reasons (an empty list for none)."
MAX_COMMENT = 2000
MSG_COMMENT = f"Must be text of at most {MAX_COMMENT:,} characters."
MSG_OUTCOME_AT = "Must be an ISO 8601 date and time, such as 2026-11-21T09:12:00Z."
MSG_REASON = "“{value}” is not an override reason of this service. Choose from: {choices}."


def discovery() -> dict[str, Any]:
    return {
        "services": [
            {
                "hook": HOOK,
                "id": SERVICE_ID,
                "title": "Running with lower back pain",
                "description": (
                    "The member's current advice on running with lower back pain, most urgent first: emergency "
                    "signs, referrals, when to stop, and how to adjust their runs."
                ),
                "prefetch": {},
            }
        ]
    }


def override_reasons() -> list[dict[str, str]]:
    """The override reasons clinicians keep, as CDS Hooks codings."""
    return [
        {"code": reason.code, "system": REASON_SYSTEM, "display": reason.display}
        for reason in OverrideReason.objects.filter(active=True)
    ]


def card(advice: Advice, reasons: list[dict[str, str]]) -> dict[str, Any]:
    """One piece of advice as a CDS Hooks card (its ``uuid`` stable: feedback names it)."""
    stored = advice.card or {}
    return {
        "uuid": str(advice.uuid),
        "summary": stored.get("summary") or advice.rule_name,
        "indicator": stored.get("indicator") or "info",
        "detail": stored.get("detail") or advice.message,
        "source": {"label": (stored.get("source") or {}).get("label") or advice.source_label or "Rule pack"},
        "overrideReasons": reasons,
    }


def member_cards(*, gym: Gym, member: str, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """The member's current advice about events of the last 30 days as cards, most urgent first
    (then newest event first); none for a member the gym does not have."""
    now = now or timezone.now()
    advice = list(
        Advice.objects.filter(
            gym=gym, member__external_id=member, withdrawn_at__isnull=True, occurred_at__gte=now - CARDS_OVER
        )
    )
    advice.sort(key=lambda a: (advice_order(a)[0], -a.occurred_at.timestamp(), *advice_order(a)[1:]))
    reasons = override_reasons()
    return [card(a, reasons) for a in advice]


def request_problems(body: Any) -> dict[str, list[str]]:
    """What is wrong with a service request, by field (empty: nothing)."""
    errors: dict[str, list[str]] = {}
    if not isinstance(body, Mapping):
        return {"hook": [MSG_HOOK]}
    if body.get("hook") != HOOK:
        errors["hook"] = [MSG_HOOK]
    try:
        uuid.UUID(str(body.get("hookInstance")))
    except ValueError:
        errors["hookInstance"] = [MSG_HOOK_INSTANCE]
    context = body.get("context")
    patient = context.get("patientId") if isinstance(context, Mapping) else None
    if not isinstance(patient, str) or not (1 <= len(patient) <= 100) or _CONTROL.search(patient):
        errors["context.patientId"] = [MSG_PATIENT]
    if isinstance(context, Mapping) and "userId" in context and not isinstance(context["userId"], str):
        errors["context.userId"] = [MSG_USER]
    return errors


def _moment(value: Any) -> dt.datetime | None:
    """An ISO 8601 date and time (UTC without an offset) the database can store, or None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = parse_datetime(value)  # a well-formed but impossible time (12:99) raises
        if parsed is None:
            return None
        parsed = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)
        parsed.astimezone(dt.UTC)  # year 1 at +14:00 has no UTC
    except (ValueError, OverflowError):
        return None
    return parsed


@dataclass(frozen=True)
class Feedback:
    """One feedback entry, read: the advice's card uuid, the outcome, the reason codes, when."""

    card: uuid.UUID
    outcome: str
    reasons: tuple[str, ...]
    comment: str
    at: dt.datetime


def _reason_code(value: Any) -> str | None:
    """A reason as a code, a coding ``{"code": ...}`` or CDS Hooks' ``{"reason": coding}``."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        if isinstance(value.get("reason"), Mapping):
            return _reason_code(value["reason"])
        code = value.get("code")
        return code if isinstance(code, str) else None
    return None


def feedback_entry_parse(entry: Any, *, path: str = "") -> tuple[Feedback | None, dict[str, list[str]]]:
    """One entry, CDS Hooks' shape (``card``, ``outcome``, ``overrideReason``/``overrideReasons``,
    ``outcomeTimestamp``) or the API's (``outcome``, ``override_reasons``, ``outcome_at``);
    returns it with the problems by field."""
    errors: dict[str, list[str]] = {}
    if not isinstance(entry, Mapping):
        return None, {path or "feedback": [MSG_FEEDBACK_LIST]}
    card_id: uuid.UUID | None = None
    if "card" in entry or not path.startswith("api"):
        try:
            card_id = uuid.UUID(str(entry.get("card")))
        except ValueError:
            errors[f"{path}card"] = [MSG_CARD]
    outcome = entry.get("outcome")
    if outcome not in ("accepted", "overridden"):
        errors[f"{path}outcome"] = [MSG_OUTCOME]
    reasons_key = "override_reasons" if "override_reasons" in entry else "overrideReasons"
    given = entry.get(reasons_key, [])
    if not isinstance(given, list):
        errors[path + reasons_key] = [MSG_REASONS_LIST]
        given = []
    if entry.get("overrideReason") is not None:  # CDS Hooks 2.0 gives one reason
        given = [*given, entry["overrideReason"]]
    known = {reason.code for reason in OverrideReason.objects.filter(active=True)}
    codes = []
    for value in given:
        code = _reason_code(value)
        if code not in known:
            errors.setdefault(path + reasons_key, []).append(
                MSG_REASON.format(value=code if code is not None else value, choices=", ".join(sorted(known)))
            )
        else:
            codes.append(code)
    comment = ""
    for value in given:
        if isinstance(value, Mapping) and isinstance(value.get("userComment"), str):
            comment = value["userComment"][:MAX_COMMENT]  # CDS Hooks sets no limit; the store does
    if "comment" in entry:
        if isinstance(entry["comment"], str) and len(entry["comment"]) <= MAX_COMMENT:
            comment = entry["comment"]
        else:
            errors[f"{path}comment"] = [MSG_COMMENT]
    raw_at = entry.get("outcomeTimestamp", entry.get("outcome_at"))
    at = timezone.now()
    if "outcomeTimestamp" in entry or "outcome_at" in entry:
        parsed = _moment(raw_at)
        if parsed is None:
            errors[path + ("outcome_at" if "outcome_at" in entry else "outcomeTimestamp")] = [MSG_OUTCOME_AT]
        else:
            at = parsed
    if errors:
        return None, errors
    return Feedback(
        card=card_id or uuid.UUID(int=0), outcome=outcome, reasons=tuple(dict.fromkeys(codes)), comment=comment, at=at
    ), {}
