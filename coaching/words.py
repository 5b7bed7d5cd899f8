"""Coaching records in a clinician's words: one date format, values with labels and units,
events as short sentences ("Run, 6.2 km in 38 min on hills, pain 2 → 6 → 5").

Pure functions over plain values and the catalog: no queries, so lists can call them per row.
Labels and units come from ``coaching.catalog``, never from field names.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from django.utils import timezone

from rules.registry import BOOLEAN, DATE, FieldSpec

from .catalog import (
    CATEGORIES,
    CROSS_TRAINING,
    FACT_TYPES,
    PAIN_FIGURES,
    PAIN_REPORT,
    PROFILE,
    PROFILE_FIELDS,
    PROFILE_FIGURES,
    RUN,
    RUN_FIGURES,
    SEVERITIES,
    TRAINING_FIGURES,
)

NOT_RECORDED = "not recorded"
NOTHING = "—"

SEVERITY_WORDS = dict(SEVERITIES)
CATEGORY_WORDS = dict(CATEGORIES)
# Where a run was, as a clinician says it (a surface not listed reads "on <surface>").
SURFACE_WORDS = {
    "road": "on the road",
    "track": "on a track",
    "treadmill": "on a treadmill",
    "trail": "on a trail",
    "hills": "on hills",
    "mixed": "on mixed surfaces",
}
# Figures in the order a clinician reads them: the run's own, then training, pain, profile.
FIGURE_SPECS: dict[str, FieldSpec] = {
    f.name: f for f in RUN_FIGURES + TRAINING_FIGURES + PAIN_FIGURES + PROFILE_FIGURES
}


# -- dates ------------------------------------------------------------------------------------
def day_words(day: dt.date) -> str:
    """The one date format of the admin: "20 Nov 2026"."""
    return f"{day.day} {day:%b %Y}"


_ISO_DAY = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")


def dates_in_words(text: str) -> str:
    """``text`` with its dates as the admin writes them ("the run of 2026-12-03" -> "the run of
    3 Dec 2026"): for sentences stored for gyms' programs, shown to clinicians."""

    def day(found: re.Match[str]) -> str:
        try:
            return day_words(dt.date(int(found[1]), int(found[2]), int(found[3])))
        except ValueError:
            return found[0]

    return _ISO_DAY.sub(day, text or "")


def moment(at: dt.datetime | None) -> str:
    """The one date-and-time format of the admin, in the admin's time zone: "20 Nov 2026, 07:30"."""
    if at is None:
        return NOTHING
    local = timezone.localtime(at)
    return f"{day_words(local.date())}, {local:%H:%M}"


def offset_words(minutes: int) -> str:
    """A UTC offset as people write it: "UTC", "UTC+01:00", "UTC−05:30"."""
    if not minutes:
        return "UTC"
    sign = "+" if minutes > 0 else "−"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{rest:02d}"


def local_moment(at: dt.datetime, offset_minutes: int) -> str:
    """A moment in the member's own local time with its offset: "20 Nov 2026, 07:30 (UTC+01:00)"."""
    local = at.astimezone(dt.timezone(dt.timedelta(minutes=offset_minutes)))
    return f"{day_words(local.date())}, {local:%H:%M} ({offset_words(offset_minutes)})"


# -- counts -----------------------------------------------------------------------------------
def count_words(n: int, singular: str, plural: str | None = None) -> str:
    """ "1 run", "2 runs", "0 runs"."""
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"


def lower_first(text: str) -> str:
    """ "Run of 20 Nov 2026" -> "run of 20 Nov 2026" (only the first letter)."""
    return text[:1].lower() + text[1:]


# -- values -----------------------------------------------------------------------------------
def number_words(value: float | int) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return str(int(value))


def unit_words(value: Any, unit: str) -> str:
    """A number with its unit: "7/10", "12%", "6.2 km", "1 run" (a counted unit agrees with its number)."""
    shown = number_words(value)
    if not unit:
        return shown
    if unit in ("/10", "%"):
        return f"{shown}{unit}"
    if value == 1 and unit.isalpha() and unit.endswith("s") and len(unit) > 3:
        unit = unit[:-1]  # runs, days, reports, weeks
    return f"{shown} {unit}"


def value_words(spec: FieldSpec | None, value: Any) -> str:
    """One recorded value as a clinician reads it: yes/no, a choice's label, a date, a number with its unit."""
    if value is None:
        return NOT_RECORDED
    if isinstance(value, bool):
        return "yes" if value else "no"
    if spec is not None and spec.choices and isinstance(value, str):
        return spec.choice_label(value)
    if spec is not None and spec.kind == DATE and isinstance(value, str):
        try:
            return day_words(dt.date.fromisoformat(value))
        except ValueError:
            return value
    if isinstance(value, (int, float)):
        return unit_words(value, spec.unit if spec is not None else "")
    if isinstance(value, (list, tuple)):
        return ", ".join(value_words(spec, item) for item in value)
    return str(value).replace("_", " ") if spec is None else str(value)


def _label_of_unknown(name: str) -> str:
    return name.replace("_", " ").capitalize()


def labelled_values(values: Mapping[str, Any], specs: Mapping[str, FieldSpec]) -> list[tuple[str, str]]:
    """(label, value in words) for each value, in the order of ``specs``; names the catalog does not
    know come last, their name in words."""
    known = [(spec.label, value_words(spec, values[name])) for name, spec in specs.items() if name in values]
    unknown = [
        (_label_of_unknown(name), value_words(None, value)) for name, value in values.items() if name not in specs
    ]
    return known + unknown


def event_fields(event_type: str) -> dict[str, FieldSpec]:
    fields = FACT_TYPES[event_type][1] if event_type in FACT_TYPES else ()
    return {f.name: f for f in fields}


def event_type_words(event_type: str) -> str:
    """ "Run", "Pain report", "Profile", "Cross-training"."""
    return FACT_TYPES[event_type][0] if event_type in FACT_TYPES else event_type.replace("_", " ").capitalize()


def data_values(event_type: str, data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What the gym sent for an event, labelled: [("Distance", "6.2 km"), ("Surface", "hills"), …]."""
    return labelled_values(data or {}, event_fields(event_type))


# A figure of an increase that fell reads as the decrease it is, with its own label.
DECREASE_LABELS = {
    "long_run_increase_pct": "Shorter than the longest run of 30 days by",
    "weekly_distance_increase_pct": "Weekly distance decrease",
}


def figure_values(figures: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The figures the rules saw for an event, labelled with units: [("Distance this week", "14 km"), …];
    a percentage as a whole number, and an increase below zero as the decrease it is."""
    rows = []
    for name, spec in FIGURE_SPECS.items():
        if name not in (figures or {}):
            continue
        value = figures[name]
        label = spec.label
        if spec.unit == "%" and isinstance(value, (int, float)) and not isinstance(value, bool):
            if value < 0 and name in DECREASE_LABELS:
                label, value = DECREASE_LABELS[name], -value
            value = round(value)
        rows.append((label, value_words(spec, value)))
    unknown = {name: value for name, value in (figures or {}).items() if name not in FIGURE_SPECS}
    return rows + labelled_values(unknown, {})


def profile_values(profile: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A member's profile, labelled: [("Cleared by a physician", "yes"), …]."""
    return labelled_values(profile or {}, {f.name: f for f in PROFILE_FIELDS})


def severity_words(code: str) -> str:
    """ "stop" -> "Stop running for now"."""
    return SEVERITY_WORDS.get(code, code)


def category_words(code: str) -> str:
    return CATEGORY_WORDS.get(code, code)


# -- events as sentences ----------------------------------------------------------------------
def event_sentence(event_type: str, data: Mapping[str, Any]) -> str:
    """An event in one line: "Run, 6.2 km in 38 min on hills, pain 2 → 6 → 5";
    "Pain report, pain 7/10 in the lower back, numbness"; "Profile: cleared by a physician";
    "Cross-training: yoga, 30 min"."""
    data = data or {}
    fields = event_fields(event_type)
    if event_type == RUN:
        return _run_sentence(data, fields)
    if event_type == PAIN_REPORT:
        return _pain_sentence(data, fields)
    if event_type == PROFILE:
        return f"Profile: {_profile_words(data, fields)}"
    if event_type == CROSS_TRAINING:
        parts = []
        if data.get("activity") is not None:
            parts.append(value_words(fields["activity"], data["activity"]))
        if data.get("duration_min") is not None:
            parts.append(unit_words(data["duration_min"], "min"))
        return "Cross-training: " + (", ".join(parts) or NOT_RECORDED)
    values = ", ".join(f"{label.lower()} {value}" for label, value in data_values(event_type, data))
    return f"{event_type_words(event_type)}: {values or NOT_RECORDED}"


def _run_sentence(data: Mapping[str, Any], fields: Mapping[str, FieldSpec]) -> str:
    words = "Run"
    distance, duration = data.get("distance_km"), data.get("duration_min")
    if distance is not None and duration is not None:
        words += f", {unit_words(distance, 'km')} in {unit_words(duration, 'min')}"
    elif distance is not None:
        words += f", {unit_words(distance, 'km')}"
    surface = data.get("surface")
    if surface:
        words += " " + SURFACE_WORDS.get(surface, f"on {fields['surface'].choice_label(surface)}")
    pains = [data.get(name) for name in ("pain_before", "pain_during", "pain_after")]
    if all(p is not None for p in pains):
        words += ", pain " + " → ".join(str(p) for p in pains)
    else:
        told = [
            f"{when} {pain}/10"
            for when, pain in zip(("before", "during", "after"), pains, strict=True)
            if pain is not None
        ]
        if told:
            words += ", pain " + ", ".join(told)
    return words


def _pain_sentence(data: Mapping[str, Any], fields: Mapping[str, FieldSpec]) -> str:
    words = "Pain report"
    if data.get("pain") is not None:
        words += f", pain {unit_words(data['pain'], '/10')}"
    location = data.get("location")
    if location:
        words += " elsewhere" if location == "other" else f" in the {fields['location'].choice_label(location)}"
    signs = [spec.label.lower() for name, spec in fields.items() if spec.kind == BOOLEAN and data.get(name) is True]
    if signs:
        words += ", " + ", ".join(signs)
    if data.get("onset_date"):
        words += f", began on {value_words(fields['onset_date'], data['onset_date'])}"
    return words


def _profile_words(data: Mapping[str, Any], fields: Mapping[str, FieldSpec]) -> str:
    parts = []
    for name, spec in fields.items():
        if name not in data:
            continue
        value = data[name]
        if spec.kind == BOOLEAN and value is True:
            parts.append(lower_first(spec.label))
        elif spec.choices and isinstance(value, str):
            parts.append(spec.choice_label(value))
        else:
            parts.append(f"{lower_first(spec.label)}: {value_words(spec, value)}")
    parts += [f"{_label_of_unknown(n).lower()}: {value_words(None, v)}" for n, v in data.items() if n not in fields]
    return ", ".join(parts) or "nothing recorded"
