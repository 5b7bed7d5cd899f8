"""Rules the tests publish on top of the default pack, so that what they prove does not hang on
the pack's own rules (which clinicians and pack upgrades change)."""

from __future__ import annotations

from typing import Any

from rules.services import rule_save, ruleset_publish
from rules.spec import condition


def _rule(key: str, name: str, **fields: Any) -> dict[str, Any]:
    return {
        "key": key,
        "name": name,
        "description": "",
        "source_label": "Test rule",
        "cooldown_days": 0,
        "holds_back_lower": False,
        "refers": False,
        "priority": 0,
        "enabled": True,
        "pattern": "single",
        "count": None,
        "window_hours": None,
        "parameters": [],
        **fields,
    }


# A massage is never a red flag in any pack: this rule alone refers the member on it.
MASSAGE_REFERRAL = _rule(
    "massage-referral",
    "See your physical therapist after a massage",
    category="medical",
    severity="refer",
    refers=True,
    message="After a massage for your back, see your physical therapist before you run again.",
    summary="See your physical therapist before your next run",
    steps=[{"fact_type": "cross_training"}],
    conditions=[condition("activity", "eq", "massage")],
)

# Advice on the member's first run only: a late earlier run withdraws it from the run it was on.
FIRST_RUN_CHECK = _rule(
    "first-run-check",
    "Check in after the first run",
    category="progression",
    severity="caution",
    message="This was your first run with us: tell your coach how your back felt.",
    summary="Tell your coach how your back felt after your first run",
    steps=[{"fact_type": "run"}],
    conditions=[condition("run_number", "eq", 1)],
)


def rules_add(*specs: dict[str, Any]) -> None:
    """Add ``specs`` to the draft (the installed pack) and publish it."""
    for spec in specs:
        rule_save(spec=spec)
    ruleset_publish(comment="Test rules: " + ", ".join(spec["key"] for spec in specs))
