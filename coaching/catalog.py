"""The running domain's event catalog: fact types, derived figures, categories, severities.

This is the event reference (docs/api.md) as data. ``CoachingConfig.ready()`` hands it to the rules
engine's registry; event validation reads the same specs, so what the API accepts and
what clinicians can write rules about never drift apart.
"""

from __future__ import annotations

from rules.registry import BOOLEAN, DATE, INTEGER, NUMBER, TEXT, FieldSpec, Registry

RUN = "run"
PAIN_REPORT = "pain_report"
PROFILE = "profile"
CROSS_TRAINING = "cross_training"

SURFACES = ("road", "track", "treadmill", "trail", "hills", "mixed")
POSTURES = ("good", "slouched", "overstriding", "leaning_back")
PAIN_LOCATIONS = ("lower_back", "upper_back", "hip", "leg", "other")
EXPERIENCE_LEVELS = ("new", "returning", "regular")
ACTIVITIES = ("yoga", "swimming", "cycling", "walking", "massage", "strength", "other")


def _pain(name: str, label: str, *, required: bool = False) -> FieldSpec:
    return FieldSpec(
        name,
        label,
        INTEGER,
        unit="/10",
        minimum=0,
        maximum=10,
        required=required,
        help_text="0 = no pain, 10 = worst imaginable",
    )


PROFILE_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(
        "experience",
        "Running experience",
        TEXT,
        choices=EXPERIENCE_LEVELS,
        choice_labels=(("new", "new to running"), ("returning", "returning to running"), ("regular", "runs regularly")),
    ),
    FieldSpec("cleared_by_physician", "Cleared by a physician", BOOLEAN, phrase="a physician's clearance"),
    FieldSpec("back_injury", "Has an injured lower back", BOOLEAN, phrase="an injured lower back"),
    FieldSpec("chronic_back_pain", "Has chronic lower back pain", BOOLEAN, phrase="chronic lower back pain"),
    FieldSpec("cancer_history", "Has a history of cancer", BOOLEAN, phrase="a history of cancer"),
)

FACT_TYPES: dict[str, tuple[str, tuple[FieldSpec, ...]]] = {
    RUN: (
        "Run",
        (
            FieldSpec("distance_km", "Distance", NUMBER, unit="km", minimum=0, maximum=300, required=True),
            FieldSpec("duration_min", "Duration", NUMBER, unit="min", minimum=0, maximum=1440, required=True),
            FieldSpec("surface", "Surface", TEXT, choices=SURFACES),
            FieldSpec("elevation_gain_m", "Elevation gain", NUMBER, unit="m", minimum=0, maximum=10000),
            FieldSpec(
                "warmup_min",
                "Warm-up",
                NUMBER,
                unit="min",
                minimum=0,
                maximum=180,
                help_text="minutes of walking or light jogging first",
            ),
            _pain("pain_before", "Pain before the run"),
            _pain("pain_during", "Pain during the run"),
            _pain("pain_after", "Pain after the run"),
            FieldSpec("shoes_km", "Distance on the shoes", NUMBER, unit="km", minimum=0, maximum=10000),
            FieldSpec("running_shoes", "Wore running shoes", BOOLEAN),
            FieldSpec("hydrated", "Drank before the run", BOOLEAN),
            FieldSpec("fuelled", "Ate before the run", BOOLEAN),
            FieldSpec("with_group", "Ran with a group or partner", BOOLEAN),
            FieldSpec(
                "posture",
                "Posture",
                TEXT,
                choices=POSTURES,
                choice_labels=(("slouched", "slouching"), ("leaning_back", "leaning back")),
            ),
            FieldSpec("rpe", "Perceived effort", INTEGER, unit="/10", minimum=1, maximum=10),
        ),
    ),
    PAIN_REPORT: (
        "Pain report",
        (
            _pain("pain", "Pain", required=True),
            FieldSpec(
                "location",
                "Where it hurts",
                TEXT,
                choices=PAIN_LOCATIONS,
                choice_labels=(("lower_back", "lower back"), ("upper_back", "upper back")),
            ),
            FieldSpec("radiates_to_leg", "Pain radiates to the leg", BOOLEAN, phrase="pain spreading into the leg"),
            FieldSpec("numbness", "Numbness", BOOLEAN),
            FieldSpec(
                "saddle_numbness", "Numbness around the saddle area", BOOLEAN, phrase="numbness around the saddle area"
            ),
            FieldSpec("leg_weakness", "Leg weakness", BOOLEAN, phrase="weakness in a leg"),
            FieldSpec(
                "bladder_or_bowel_change",
                "Bladder or bowel change",
                BOOLEAN,
                phrase="a change in bladder or bowel control",
            ),
            FieldSpec("fever", "Fever", BOOLEAN),
            FieldSpec("night_pain", "Pain at night", BOOLEAN),
            FieldSpec(
                "unexplained_weight_loss", "Unexplained weight loss", BOOLEAN, phrase="weight loss you cannot explain"
            ),
            FieldSpec("recent_trauma", "Recent fall or injury", BOOLEAN, phrase="a recent fall or injury"),
            FieldSpec("onset_date", "Pain began on", DATE, help_text="not in the future"),
        ),
    ),
    PROFILE: ("Profile", PROFILE_FIELDS),
    CROSS_TRAINING: (
        "Cross-training",
        (
            FieldSpec("activity", "Activity", TEXT, choices=ACTIVITIES, required=True),
            FieldSpec("duration_min", "Duration", NUMBER, unit="min", minimum=0, maximum=1440),
        ),
    ),
}

# Derived figures (see coaching/figures.py for how each is computed). Training and pain
# figures make sense on every fact; the run-only ones describe the run being judged.
TRAINING_FIGURES: tuple[FieldSpec, ...] = (
    FieldSpec(
        "weekly_distance_km",
        "Distance this week",
        NUMBER,
        unit="km",
        help_text="runs on this day and the 6 days before",
    ),
    FieldSpec(
        "previous_week_distance_km", "Distance the week before", NUMBER, unit="km", help_text="runs 7 to 13 days before"
    ),
    FieldSpec(
        "weekly_distance_increase_pct",
        "Weekly distance increase",
        NUMBER,
        unit="%",
        help_text="this week's distance over the week before's; absent when the week before is 0",
    ),
    FieldSpec(
        "runs_last_7_days", "Runs in the last 7 days", INTEGER, unit="runs", help_text="this day and the 6 days before"
    ),
    FieldSpec("consecutive_run_days", "Days in a row with a run", INTEGER, unit="days", help_text="counting this day"),
    FieldSpec(
        "hours_since_last_run",
        "Hours since the previous run",
        NUMBER,
        unit="h",
        help_text="absent when there is no earlier run",
    ),
    FieldSpec(
        "longest_run_30d_km",
        "Longest run of the previous 30 days",
        NUMBER,
        unit="km",
        help_text="this run excluded; 0 when there is none",
    ),
    FieldSpec(
        "pain_free_run_streak",
        "Pain-free runs in a row",
        INTEGER,
        unit="runs",
        help_text="runs in a row (this one included) with pain during and after at most 2",
    ),
    FieldSpec(
        "runs_without_group_streak",
        "Runs in a row alone",
        INTEGER,
        unit="runs",
        help_text="runs in a row (this one included) not run with a group or partner",
    ),
)
# The pain of a pain report or a run, so that one rule can look at pain wherever it is reported.
# Made of the event's own fields (coaching.evaluation.event_fact), so a pattern that reads it of an
# earlier event needs none of the stored figures.
EVENT_PAIN_FIGURES: tuple[FieldSpec, ...] = (
    FieldSpec(
        "event_pain",
        "Pain of the event",
        INTEGER,
        unit="/10",
        minimum=0,
        maximum=10,
        phrase="pain",
        help_text="a pain report's pain; a run's larger of pain during and after (absent when neither is given)",
    ),
)
PAIN_FIGURES: tuple[FieldSpec, ...] = (
    FieldSpec("pain_reports_last_14_days", "Pain reports in the last 14 days", INTEGER, unit="reports"),
    FieldSpec(
        "pain_episode_weeks",
        "Weeks of the current pain episode",
        INTEGER,
        unit="weeks",
        help_text="since the current run of pain reports began; a gap of 14 days or more ends it",
    ),
)
RUN_FIGURES: tuple[FieldSpec, ...] = (
    FieldSpec("run_number", "Run number", INTEGER, help_text="1 for the member's first run"),
    FieldSpec(
        "long_run_increase_pct",
        "Longer than the longest run of 30 days by",
        NUMBER,
        unit="%",
        help_text="absent when there was no run in the previous 30 days",
    ),
    FieldSpec(
        "pain_rise",
        "Pain rise over the run",
        INTEGER,
        unit="/10",
        help_text="pain after minus pain before; absent if either is missing",
    ),
)
PROFILE_FIGURES: tuple[FieldSpec, ...] = tuple(
    FieldSpec(
        f.name,
        f"Profile: {f.label[0].lower()}{f.label[1:]}",
        f.kind,
        choices=f.choices,
        choice_labels=f.choice_labels,
        phrase=f.phrase,
        help_text="from the latest profile events at that time" + ("; false when unknown" if f.kind == BOOLEAN else ""),
    )
    for f in PROFILE_FIELDS
)

CATEGORIES: tuple[tuple[str, str], ...] = (
    ("medical", "Medical"),
    ("pain", "Pain"),
    ("progression", "Progression"),
    ("warmup", "Warm-up"),
    ("footwear", "Footwear"),
    ("surface", "Surface"),
    ("posture", "Posture"),
    ("hydration", "Hydration and fuel"),
    ("motivation", "Motivation"),
    ("overuse", "Overuse"),
    ("rest", "Rest"),
    ("encouragement", "Encouragement"),
)
# Most urgent first: advice is listed in this order (docs/advice.md).
SEVERITIES: tuple[tuple[str, str], ...] = (
    ("emergency", "Get emergency care now"),
    ("refer", "See a physician or physical therapist"),
    ("stop", "Stop running for now"),
    ("caution", "Adjust the next runs"),
    ("info", "Tip"),
)
SEVERITY_CODES = tuple(code for code, _ in SEVERITIES)
# Under referral, only advice this urgent or more is given (emergency care, see a physician, stop running).
REFERRAL_FLOOR = "stop"
# HL7 CDS Hooks card indicators, most urgent first, and each severity's unless a rule sets its own:
# "critical" keeps its meaning (emergencies and referrals).
INDICATORS: tuple[tuple[str, str], ...] = (("critical", "Critical"), ("warning", "Warning"), ("info", "Info"))
SEVERITY_INDICATORS = {
    "emergency": "critical",
    "refer": "critical",
    "stop": "warning",
    "caution": "warning",
    "info": "info",
}
CATEGORY_CODES = tuple(code for code, _ in CATEGORIES)


# Every figure that counts the history: what a fact has beyond its event's own fields.
FIGURE_NAMES = frozenset(spec.name for spec in TRAINING_FIGURES + PAIN_FIGURES + RUN_FIGURES + PROFILE_FIGURES)


def catalog_register(registry: Registry) -> None:
    """Declare the running domain to the rules engine (called from ``CoachingConfig.ready``)."""
    for name, (label, fields) in FACT_TYPES.items():
        registry.register_fact_type(name, label, fields)
    all_types = list(FACT_TYPES)
    registry.register_derived(TRAINING_FIGURES + PAIN_FIGURES + PROFILE_FIGURES, fact_types=all_types)
    registry.register_derived(RUN_FIGURES, fact_types=[RUN])
    registry.register_derived(EVENT_PAIN_FIGURES, fact_types=[RUN, PAIN_REPORT])
    registry.register_categories(CATEGORIES)
    registry.register_severities(SEVERITIES)
    registry.register_referral_floor(REFERRAL_FLOOR)
    registry.register_indicators(INDICATORS, defaults=SEVERITY_INDICATORS)
    registry.register_subject("member", "members")
