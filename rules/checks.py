"""System checks for a misconfigured rules engine."""

from __future__ import annotations

from django.core import checks

from rules.internal.facts import RESERVED_FIELD_NAMES
from rules.registry import registry


@checks.register()
def check_registry(app_configs, **kwargs):
    errors = []
    if not registry.fact_types():
        errors.append(
            checks.Warning(
                "No fact types are registered with the rules engine.",
                hint="Register them in your domain app's AppConfig.ready() with rules.registry.registry.",
                id="rules.W001",
            )
        )
    for fact_type in registry.fact_types():
        for name in fact_type.fields:
            if name in RESERVED_FIELD_NAMES or name.startswith("_"):
                errors.append(
                    checks.Error(
                        f"Field {fact_type.name}.{name} uses a name the engine reserves.",
                        hint=f"Rename it; reserved: {', '.join(sorted(RESERVED_FIELD_NAMES))} "
                        "and names starting with '_'.",
                        id="rules.E001",
                    )
                )
    if not registry.severities():
        errors.append(
            checks.Error(
                "No severities are registered with the rules engine.",
                hint="Call registry.register_severities([...]) in your domain app's ready().",
                id="rules.E002",
            )
        )
    return errors
