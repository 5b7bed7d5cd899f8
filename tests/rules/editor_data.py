"""Turn a rule spec into the POST data the admin's rule editor sends (shared by both suites)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rules.admin.forms import AMOUNT_FIELDS, cooldown_amount, window_amount
from rules.spec import RULE_FIELDS, value_text


def editor_post(spec: Mapping[str, Any], *, revision: int | None = None, **extra: str) -> dict[str, str]:
    data: dict[str, str] = {}
    for name, (_, default) in RULE_FIELDS.items():
        value = spec.get(name, default)
        if name in AMOUNT_FIELDS:  # a number and a unit, as a clinician picks them
            amount, unit = (window_amount if name == "window_hours" else cooldown_amount)(value)
            number_field, unit_field = AMOUNT_FIELDS[name]
            data[number_field], data[unit_field] = value_text(amount), unit
        elif isinstance(default, bool):  # a checkbox: sent only when ticked
            if value:
                data[name] = "on"
        else:
            data[name] = value_text(value)
    data["revision"] = value_text(revision)
    groups = {
        "steps": spec.get("steps") or [],
        "conditions": spec.get("conditions") or [],
        "parameters": spec.get("parameters") or [],
    }
    for prefix, rows in groups.items():
        data[f"{prefix}-TOTAL_FORMS"] = str(len(rows))
        data[f"{prefix}-INITIAL_FORMS"] = str(len(rows))
        data[f"{prefix}-MIN_NUM_FORMS"] = "0"
        data[f"{prefix}-MAX_NUM_FORMS"] = "1000"
        for index, row in enumerate(rows):
            for name, value in row.items():
                if name == "negate":
                    if value:
                        data[f"{prefix}-{index}-negate"] = "on"
                    continue
                data[f"{prefix}-{index}-{name}"] = value_text(value)
    data.update(extra)
    return data
