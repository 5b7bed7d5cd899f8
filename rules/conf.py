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
        # How many clinicians other than its author approve a request to publish or roll back
        # before it goes live. 0: publishing takes effect at once (a single-clinician practice).
        "PUBLISH_APPROVALS": 1,
        # A draft is flagged, and publishing it needs a written reason, when it raises advice per
        # subject and week by more than this many percent over the live version ...
        "BURDEN_ADVICE_RISE_PCT": 25,
        # ... or gives cards of the most urgent indicator to more than this share of subjects (%).
        "BURDEN_MOST_URGENT_PCT": 5,
        # A rule is marked for review when more than this share of its cards is overridden (%) ...
        "LANDING_OVERRIDE_PCT": 50,
        # ... over at least this many cards with feedback ...
        "LANDING_OVERRIDE_MIN_CARDS": 20,
        # ... or when a week's firings are more than this many times the average week before it,
        # and at least LANDING_JUMP_MIN.
        "LANDING_JUMP_FACTOR": 2.0,
        "LANDING_JUMP_MIN": 10,
        # A simulation of more facts than SIMULATION_PART_MIN_FACTS is split into up to this
        # many parts by subject, each a job any queue worker takes; set it to the number of workers.
        "SIMULATION_PARTS": 1,
        "SIMULATION_PART_MIN_FACTS": 10_000,
        # ... and into parts of at most this many facts, so that a worker's memory stays bounded.
        "SIMULATION_PART_MAX_FACTS": 100_000,
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
    "PUBLISH_APPROVALS": 1,
    "BURDEN_ADVICE_RISE_PCT": 25,
    "BURDEN_MOST_URGENT_PCT": 5,
    "LANDING_OVERRIDE_PCT": 50,
    "LANDING_OVERRIDE_MIN_CARDS": 20,
    "LANDING_JUMP_FACTOR": 2.0,
    "LANDING_JUMP_MIN": 10,
    "SIMULATION_PARTS": 1,
    "SIMULATION_PART_MIN_FACTS": 10_000,
    "SIMULATION_PART_MAX_FACTS": 100_000,
}


class RulesSettings:
    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Unknown rules setting {name!r}")
        return getattr(settings, "RULES_ENGINE", {}).get(name, DEFAULTS[name])


rules_settings = RulesSettings()
