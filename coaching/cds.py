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
MSG_PATIENT = "“context.patientId” must name the member (1 to 100 characters)."
MSG_FEEDBACK_LIST = "Send {“feedback”: [...]}, one entry per card acted on."
MSG_CARD = "“card” must be the uuid of a card this service gave."
MSG_OUTCOME = "“outcome” must be “accepted” or “overridden”."
MSG_OUTCOME_AT = "“outcomeTimestamp” must be an ISO 8601 date and time."
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
    if not isinstance(patient, str) or not (1 <= len(patient) <= 100) or "\x00" in patient:
        errors["context.patientId"] = [MSG_PATIENT]
    return errors


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
    given = entry.get("overrideReasons", entry.get("override_reasons"))
    if given is None and entry.get("overrideReason") is not None:
        given = [entry["overrideReason"]]
    given = given if isinstance(given, list) else ([] if given is None else [given])
    known = {reason.code for reason in OverrideReason.objects.filter(active=True)}
    codes = []
    for value in given:
        code = _reason_code(value)
        if code not in known:
            errors.setdefault(f"{path}overrideReasons", []).append(
                MSG_REASON.format(value=code if code is not None else value, choices=", ".join(sorted(known)))
            )
        else:
            codes.append(code)
    comment = ""
    for value in given:
        if isinstance(value, Mapping) and isinstance(value.get("userComment"), str):
            comment = value["userComment"][:2000]
    if isinstance(entry.get("comment"), str):
        comment = entry["comment"][:2000]
    raw_at = entry.get("outcomeTimestamp", entry.get("outcome_at"))
    at = timezone.now()
    if raw_at is not None:
        parsed = parse_datetime(raw_at) if isinstance(raw_at, str) else None
        if parsed is None:
            errors[f"{path}outcomeTimestamp"] = [MSG_OUTCOME_AT]
        else:
            at = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)
    if errors:
        return None, errors
    return Feedback(card=card_id or uuid.UUID(int=0), outcome=outcome, reasons=tuple(dict.fromkeys(codes)), comment=comment, at=at), {}
