"""The default rule pack (RULES.md) as plain rule specs for ``ruleset_install_pack``.

Messages are our own words, paraphrasing the seed article; every number is a parameter
a clinician can change in the admin. ``{field}`` in a message is the value on the newest
matched fact, ``{parameter}`` the parameter's value; a message only names fields the
rule's conditions guarantee to be present.
"""

from __future__ import annotations

from typing import Any

from rules.spec import condition

TIPS = "Tips For Running With Lower Back Pain"
INTRO = "Is Running Good For Lower Back Pain"
BENEFITS = "Benefits Of Running For Lower Back Pain"
FAQ = "Frequently Asked Questions"


def _param(name: str, label: str, value: float, *, kind: str = "integer", unit: str = "") -> dict[str, Any]:
    return {"name": name, "label": label, "kind": kind, "value": value, "unit": unit}


def _rule(
    key: str,
    name: str,
    *,
    description: str,
    category: str,
    severity: str,
    message: str,
    source_label: str,
    steps: list[str],
    conditions: list[dict[str, Any]],
    parameters: list[dict[str, Any]] | None = None,
    pattern: str = "single",
    count: int | None = None,
    window_hours: int | None = None,
    cooldown_days: int = 0,
) -> dict[str, Any]:
    return {
        "key": key,
        "name": name,
        "description": description,
        "category": category,
        "severity": severity,
        "message": message,
        "source_label": source_label,
        "cooldown_days": cooldown_days,
        "enabled": True,
        "pattern": pattern,
        "count": count,
        "window_hours": window_hours,
        "steps": [{"fact_type": fact_type} for fact_type in steps],
        "conditions": conditions,
        "parameters": parameters or [],
    }


RULE_PACK: list[dict[str, Any]] = [
    _rule(
        "medical-clearance",
        "Get checked before you start",
        description="The member's first run, and no physician has cleared them to run.",
        category="medical",
        severity="refer",
        message=(
            "Welcome to your first run with us. We have no record that a doctor has cleared you to run, and "
            "with lower back pain that check should come before any new training plan. Please see a "
            "physician or physical therapist, then tell us once you are cleared."
        ),
        source_label=f"{INTRO}: consult a doctor before starting",
        steps=["run"],
        conditions=[
            condition("run_number", "lte", parameter="first_runs", group=1),
            condition("cleared_by_physician", "eq", value=True, group=2, negate=True),
        ],
        parameters=[_param("first_runs", "Up to run number", 1)],
    ),
    _rule(
        "back-injury",
        "Injured back: see a physician first",
        description="A run while the profile records a back injury and no physician clearance.",
        category="medical",
        severity="refer",
        message=(
            "Your profile says your lower back is injured and nobody has cleared you to run yet. Pause the "
            "running and let a physician look at the injury before your next run."
        ),
        source_label=f"{INTRO}: injured lower back",
        steps=["run"],
        conditions=[
            condition("back_injury", "eq", value=True, group=1),
            condition("cleared_by_physician", "eq", value=True, group=2, negate=True),
        ],
    ),
    _rule(
        "warm-up",
        "Warm up first",
        description="A run with a warm-up shorter than the minimum.",
        category="warmup",
        severity="info",
        message=(
            "You warmed up for {warmup_min} min. Give your muscles at least {min_warmup} minutes of easy "
            "walking or gentle jogging before the run itself."
        ),
        source_label=f"{TIPS}: warm up with light jogging and walking",
        steps=["run"],
        conditions=[condition("warmup_min", "lt", parameter="min_warmup")],
        parameters=[_param("min_warmup", "Minimum warm-up", 5, kind="number", unit="min")],
    ),
    _rule(
        "start-short",
        "Start with short runs",
        description="One of the member's first runs is longer than the starting distance or time.",
        category="progression",
        severity="caution",
        message=(
            "This was run number {run_number}: {distance_km} km in {duration_min} min. While you are "
            "getting started, keep runs under {max_km} km and {max_min} minutes and build up slowly as "
            "your back gets used to it."
        ),
        source_label=f"{TIPS}: don't start with long distances",
        steps=["run"],
        conditions=[
            condition("run_number", "lte", parameter="first_runs", group=1),
            condition("distance_km", "gt", parameter="max_km", group=2),
            condition("duration_min", "gt", parameter="max_min", group=2),
        ],
        parameters=[
            _param("first_runs", "Counts during the first runs", 6, unit="runs"),
            _param("max_km", "Longest starting run", 5, kind="number", unit="km"),
            _param("max_min", "Longest starting time", 40, kind="number", unit="min"),
        ],
    ),
    _rule(
        "gradual-increase",
        "Build up distance gradually",
        description="This week's distance is more than the allowed increase over the week before.",
        category="progression",
        severity="caution",
        message=(
            "You covered {weekly_distance_km} km over the last 7 days against {previous_week_distance_km} km "
            "the week before, a rise of {weekly_distance_increase_pct}%. Add distance in small steps, no "
            "more than about {max_increase_pct}% a week, so your back can keep up."
        ),
        source_label=f"{TIPS}: increase distance gradually",
        steps=["run"],
        conditions=[
            condition("weekly_distance_increase_pct", "gt", parameter="max_increase_pct", group=1),
            condition("previous_week_distance_km", "gt", parameter="min_previous_km", group=2),
        ],
        parameters=[
            _param("max_increase_pct", "Largest weekly increase", 10, kind="number", unit="%"),
            _param("min_previous_km", "Only when the week before had more than", 0, kind="number", unit="km"),
        ],
    ),
    _rule(
        "long-run-spike",
        "No sudden long runs",
        description="A run much longer than the longest run of the previous 30 days.",
        category="progression",
        severity="caution",
        message=(
            "At {distance_km} km this run was {long_run_increase_pct}% longer than your longest run of the "
            "previous month ({longest_run_30d_km} km). Stretch your longest run by no more than about "
            "{max_increase_pct}% at a time."
        ),
        source_label=(
            f"{TIPS}: increase distance gradually; Frandsen et al., Br J Sports Med 2025 (single-run spikes and injury)"
        ),
        steps=["run"],
        conditions=[
            condition("long_run_increase_pct", "gt", parameter="max_increase_pct", group=1),
            condition("longest_run_30d_km", "gt", parameter="min_longest_km", group=2),
        ],
        parameters=[
            _param("max_increase_pct", "Largest step over the longest run", 10, kind="number", unit="%"),
            _param("min_longest_km", "Only when the longest run was over", 0, kind="number", unit="km"),
        ],
    ),
    _rule(
        "pain-stop",
        "Stop when it hurts",
        description="Pain during or after a run at or above the threshold.",
        category="pain",
        severity="stop",
        message=(
            "You reported pain of {threshold}/10 or more during or after this run. That is your back "
            "telling you something is not right: stop running for now and rest until it settles."
        ),
        source_label=f"{TIPS}: listen to your body's cues",
        steps=["run"],
        conditions=[
            condition("pain_during", "gte", parameter="threshold"),
            condition("pain_after", "gte", parameter="threshold"),
        ],
        parameters=[_param("threshold", "Pain threshold", 5, unit="/10")],
    ),
    _rule(
        "pain-rising",
        "Pain rose during the run",
        description="Pain after the run is higher than before it by at least the given rise.",
        category="pain",
        severity="caution",
        message=(
            "Your pain climbed by {pain_rise} points between the start and the end of this run. Adjust: "
            "make the next run shorter or easier and watch how your back responds."
        ),
        source_label=f"{TIPS}: listen to your body's cues",
        steps=["run"],
        conditions=[condition("pain_rise", "gte", parameter="min_rise")],
        parameters=[_param("min_rise", "Rise in pain", 2, unit="points")],
    ),
    _rule(
        "running-shoes",
        "Wear proper running shoes",
        description="A run not in running shoes, or in shoes with too many kilometres on them.",
        category="footwear",
        severity="caution",
        message=(
            "Good cushioned running shoes take much of the jolt out of every step, which matters with a "
            "sore back. Run in proper running shoes and swap them for a new pair at about {max_shoes_km} km."
        ),
        source_label=f"{TIPS}: wear proper shoes",
        steps=["run"],
        conditions=[
            condition("running_shoes", "eq", value=False),
            condition("shoes_km", "gte", parameter="max_shoes_km"),
        ],
        parameters=[_param("max_shoes_km", "Replace shoes after", 700, kind="number", unit="km")],
    ),
    _rule(
        "flat-surface",
        "Prefer flat routes",
        description="A run on hills, or with a lot of climbing.",
        category="surface",
        severity="caution",
        message=(
            "This run had hills or a lot of climbing. Slopes put extra load on the lower back, so choose "
            "mostly flat, even routes for now (under {max_elevation_m} m of climbing)."
        ),
        source_label=f"{TIPS}: stick to flat surfaces",
        steps=["run"],
        conditions=[
            condition("surface", "eq", value="hills"),
            condition("elevation_gain_m", "gte", parameter="max_elevation_m"),
        ],
        parameters=[_param("max_elevation_m", "Climbing counted as hilly", 150, kind="number", unit="m")],
    ),
    _rule(
        "posture",
        "Run tall",
        description="A run with a posture other than good.",
        category="posture",
        severity="info",
        message=(
            "Your posture on this run was noted as {posture}. Run tall with relaxed shoulders and short "
            "steps under your body: a well-aligned spine is less likely to get irritated."
        ),
        source_label=f"{TIPS}: maintain good posture",
        steps=["run"],
        conditions=[condition("posture", "ne", value="good")],
    ),
    _rule(
        "hydration",
        "Drink and eat around longer runs",
        description="A longer run without drinking or eating beforehand.",
        category="hydration",
        severity="info",
        message=(
            "For a run of {duration_min} min, have something to drink and a light snack beforehand, and "
            "refuel afterwards, so you have the energy to finish without tiring early."
        ),
        source_label=f"{TIPS}: stay hydrated and fuel up",
        steps=["run"],
        conditions=[
            condition("duration_min", "gt", parameter="min_duration", group=1),
            condition("hydrated", "eq", value=False, group=2),
            condition("fuelled", "eq", value=False, group=2),
        ],
        parameters=[_param("min_duration", "Runs longer than", 45, kind="number", unit="min")],
    ),
    _rule(
        "run-with-others",
        "Find running company",
        description="Several runs in a row without a group or partner.",
        category="motivation",
        severity="info",
        message=(
            "Your last {runs_without_group_streak} runs were all on your own. A running group or partner "
            "makes it more fun and helps you keep each other on track."
        ),
        source_label=f"{TIPS}: find a supportive running group",
        steps=["run"],
        conditions=[condition("runs_without_group_streak", "gte", parameter="min_streak")],
        parameters=[_param("min_streak", "Runs alone in a row", 5, unit="runs")],
        cooldown_days=30,
    ),
    _rule(
        "limit-duration",
        "Keep runs time-limited",
        description="A run longer than the time limit.",
        category="overuse",
        severity="caution",
        message=(
            "This run lasted {duration_min} min. Running does your back most good in moderate doses; "
            "keep sessions to about {max_min} minutes so the back muscles are not overloaded."
        ),
        source_label=f"{TIPS}: run for a limited time",
        steps=["run"],
        conditions=[condition("duration_min", "gt", parameter="max_min")],
        parameters=[_param("max_min", "Longest run", 60, kind="number", unit="min")],
    ),
    _rule(
        "rest-days",
        "Take rest days",
        description="Runs on too many days in a row.",
        category="rest",
        severity="caution",
        message=(
            "You have run {consecutive_run_days} days in a row. Put rest days between your runs: time off "
            "lets tight, tender back muscles recover."
        ),
        source_label=f"{TIPS}: rest between running sessions",
        steps=["run"],
        conditions=[condition("consecutive_run_days", "gte", parameter="max_days")],
        parameters=[_param("max_days", "Days in a row", 3, unit="days")],
    ),
    _rule(
        "hill-then-pain",
        "Hills followed by pain",
        description="A pain report soon after a run on hills.",
        category="surface",
        severity="caution",
        message=(
            "You reported pain of {pain}/10 within two days of a hilly run. Hills add stress "
            "to the lower back: keep to flat routes until the pain has gone."
        ),
        source_label=f"{TIPS}: stick to flat surfaces",
        pattern="sequence",
        window_hours=48,
        steps=["run", "pain_report"],
        conditions=[
            condition("surface", "eq", value="hills", step=1),
            condition("pain", "gte", parameter="threshold", step=2),
        ],
        parameters=[_param("threshold", "Pain threshold", 4, unit="/10")],
    ),
    _rule(
        "persistent-pain",
        "Pain that keeps coming back",
        description="Several pain reports at or above the threshold within two weeks.",
        category="pain",
        severity="refer",
        message=(
            "You have reported pain of {threshold}/10 or more again and again over the last two weeks. "
            "Pain that keeps returning deserves a proper look: please see a physician or physical "
            "therapist before running again."
        ),
        source_label=f"{INTRO}: consult a physical therapist or physician",
        pattern="count",
        count=3,
        window_hours=336,
        steps=["pain_report"],
        conditions=[condition("pain", "gte", parameter="threshold")],
        parameters=[_param("threshold", "Pain threshold", 4, unit="/10")],
    ),
    _rule(
        "chronic-low-impact",
        "Chronic pain: favour low-impact exercise",
        description="A pain report during a long pain episode, or with chronic back pain in the profile.",
        category="medical",
        severity="refer",
        message=(
            "Your back pain has gone on for a long time. Long-lasting back pain calls for a clinician's "
            "assessment, and gentler activities such as yoga, swimming or massage may suit you better "
            "than running for now."
        ),
        source_label=f"{FAQ}: can running worsen lower back pain?",
        steps=["pain_report"],
        conditions=[
            condition("pain_episode_weeks", "gte", parameter="chronic_weeks"),
            condition("chronic_back_pain", "eq", value=True),
        ],
        parameters=[_param("chronic_weeks", "Weeks of pain counted as chronic", 12, unit="weeks")],
        cooldown_days=30,
    ),
    _rule(
        "acute-rest",
        "Rest helps recent pain",
        description="A painful report early in a pain episode.",
        category="pain",
        severity="info",
        message=(
            "You reported pain of {pain}/10, and it began recently. Back pain that is new usually eases "
            "with rest and care within a few weeks: go easy and let it settle before you build up again."
        ),
        source_label=f"{FAQ}: types of lower back pain",
        steps=["pain_report"],
        conditions=[
            condition("pain", "gte", parameter="threshold", group=1),
            condition("pain_episode_weeks", "lt", parameter="acute_weeks", group=2),
        ],
        parameters=[
            _param("threshold", "Pain threshold", 4, unit="/10"),
            _param("acute_weeks", "Episode shorter than", 4, unit="weeks"),
        ],
    ),
    _rule(
        "red-flags",
        "Warning signs: get checked promptly",
        description="A pain report with numbness, leg weakness, bladder or bowel change, fever or night pain.",
        category="medical",
        severity="refer",
        message=(
            "Your report includes a warning sign (numbness, leg weakness, bladder or bowel changes, fever "
            "or pain at night). Stop running and have a doctor assess you promptly."
        ),
        source_label="Beyond the article: red flags for low back pain (NICE guideline NG59)",
        steps=["pain_report"],
        conditions=[
            condition("numbness", "eq", value=True),
            condition("leg_weakness", "eq", value=True),
            condition("bladder_or_bowel_change", "eq", value=True),
            condition("fever", "eq", value=True),
            condition("night_pain", "eq", value=True),
        ],
    ),
    _rule(
        "good-progress",
        "Great progress",
        description="A streak of pain-free runs.",
        category="encouragement",
        severity="info",
        message=(
            "That makes {pain_free_run_streak} runs in a row with little or no pain. Well done: running "
            "done this way builds the core, hip and leg strength that helps keep back pain away."
        ),
        source_label=f"{BENEFITS}: reduces lower back pain",
        steps=["run"],
        conditions=[condition("pain_free_run_streak", "gte", parameter="min_streak")],
        parameters=[_param("min_streak", "Pain-free runs in a row", 5, unit="runs")],
        cooldown_days=14,
    ),
    _rule(
        "low-impact-credit",
        "Good choice of low-impact exercise",
        description="Cross-training with a gentle, low-impact activity.",
        category="encouragement",
        severity="info",
        message=(
            "Nice work fitting in some {activity}. Gentle, low-impact activity like this relaxes tight back "
            "muscles and eases pain alongside your running."
        ),
        source_label=f"{FAQ}: simple ways to ease lower back pain",
        steps=["cross_training"],
        conditions=[condition("activity", "in", value=["yoga", "swimming", "walking", "massage"])],
    ),
]
