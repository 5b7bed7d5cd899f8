"""App settings of the rules engine, read from ``settings.RULES_ENGINE``.

Defaults (override any key in the project's settings)::

    RULES_ENGINE = {
        # Seconds a worker trusts its compiled ruleset before asking the database for the
        # live version again. 0 asks before every evaluation (a publish is seen at once).
        "VERSION_CHECK_SECONDS": 0,
        # The most events one pattern may chain (longer chains are refused at save).
        "MAX_PATTERN_STEPS": 6,
        # The most enabled rules one ruleset may hold (a larger pack is refused).
        "MAX_RULES": 100,
        # Dotted path of a callable ``manage.py worker`` calls once loaded, before it takes a
        # job, e.g. the project's tuning of a long-running process. None: nothing is called.
        "WORKER_READY": None,
    }
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "VERSION_CHECK_SECONDS": 0.0,
    "MAX_PATTERN_STEPS": 6,
    "MAX_RULES": 100,
    "WORKER_READY": None,
}


class RulesSettings:
    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Unknown rules setting {name!r}")
        return getattr(settings, "RULES_ENGINE", {}).get(name, DEFAULTS[name])


rules_settings = RulesSettings()
