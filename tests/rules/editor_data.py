"""Turn a rule spec into the POST data the admin's rule editor sends (shared by both suites)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rules.spec import value_text


def editor_post(spec: Mapping[str, Any], *, revision: int | None = None, **extra: str) -> dict[str, str]:
    data: dict[str, str] = {}
    for name in (
        "key",
        "name",
        "description",
        "category",
        "severity",
        "pattern",
        "count",
        "window_hours",
        "message",
        "source_label",
        "cooldown_days",
    ):
        data[name] = value_text(spec.get(name))
    if spec.get("enabled", True):
        data["enabled"] = "on"
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
