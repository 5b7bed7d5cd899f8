"""What gyms read of advice (the API's answers and the webhooks' payloads), written directly.

The API's serializers declare the same shape (and the OpenAPI schema); these functions write it
without DRF building and deep-copying every field for each object, because answering a POST is
the API's hot path. tests/coaching/test_serializers.py holds the two equal.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from .models import Advice


def advice_representation(advice: Advice) -> dict[str, Any]:
    """What AdviceSerializer gives for ``advice``."""
    card = advice.card
    withdrawn = None
    if advice.withdrawn_at is not None:
        withdrawn = {
            "at": datetime_text(advice.withdrawn_at),
            "by_event": advice.withdrawn_by.external_id if advice.withdrawn_by_id else None,
            "reason": str(advice.withdrawn_reason),
        }
    return {
        "id": advice.id,
        "member": str(advice.member.external_id),
        "event": str(advice.event.external_id),
        "rule": {"key": str(advice.rule_key), "name": str(advice.rule_name), "version": int(advice.rule_version)},
        "category": advice.category,
        "severity": advice.severity,
        "message": str(advice.message),
        "matched_events": [str(event) if event is not None else None for event in advice.matched_events],
        "source": {"label": str(advice.source_label)},
        "card": None if card is None else _card(card),
        "created_at": datetime_text(advice.created_at),
        "withdrawn": withdrawn,
    }


def _card(card: dict[str, Any]) -> dict[str, Any]:
    return {
        "summary": str(card["summary"]),
        "indicator": card["indicator"],
        "detail": str(card["detail"]),
        "source": None if card["source"] is None else {"label": str(card["source"]["label"])},
    }


# DRF's own writing of a moment (the current time zone, UTC as "Z"), without a serializer around it.
datetime_text = serializers.DateTimeField().to_representation


