"""Declarative rules stored as data, and their immutable published versions.

The ``Rule`` rows (with their steps, conditions and parameters) are the draft that
clinicians edit. Publishing freezes the whole draft into a ``RulesetVersion``; evaluation
always uses the latest version, never the draft.
"""

from __future__ import annotations

import uuid

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.db import models

from rules.spec import COUNT, DAYS, EVIDENCE_DEFAULT, EVIDENCE_LEVELS, OPERATORS, PARAMETER_KINDS, PATTERNS, SINGLE

OPERATOR_CHOICES = [(code, label) for code, (label, _, _) in OPERATORS.items()]
KIND_CHOICES = [(kind, kind) for kind in PARAMETER_KINDS]


class Rule(models.Model):
    key = models.SlugField(max_length=80, unique=True, help_text="Stable identifier, e.g. pain-stop. Never reuse one.")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=50)
    severity = models.CharField(max_length=20)
    message = models.TextField(
        help_text="What the member reads. Use {field_name} for a value of the matched event and "
        "{parameter_name} for a parameter, e.g. “Pain of {pain_during}/10 …”."
    )
    summary = models.CharField(
        max_length=200,
        blank=True,
        help_text="What to do, in at most 140 characters: many clinical systems show only this.",
    )
    source_label = models.CharField(max_length=300, blank=True, help_text="Where the advice comes from.")
    evidence_level = models.CharField(
        "evidence",
        max_length=20,
        choices=list(EVIDENCE_LEVELS.items()),
        default=EVIDENCE_DEFAULT,
        help_text="What the advice rests on.",
    )
    review_by = models.DateField(
        null=True,
        blank=True,
        help_text="When a clinician should look at the rule again; empty: a year after it last changed.",
    )
    cooldown_days = models.PositiveIntegerField(
        default=0, help_text="No new advice from this rule for the same member within this many days (0: no limit)."
    )
    holds_back_lower = models.BooleanField(
        "holds back lower advice",
        default=False,
        help_text="When it fires, less urgent advice on the same event is not given.",
    )
    refers = models.BooleanField(
        "refers the member",
        default=False,
        help_text="When it fires, the member is under referral and gets only the most urgent advice until cleared.",
    )
    follows_referral = models.BooleanField(
        "as urgent as the referral in force",
        default=False,
        help_text="Under referral, the advice takes the referral's severity when that is more urgent.",
    )
    indicator = models.CharField(
        "card indicator",
        max_length=20,
        blank=True,
        default="",
        help_text="How the advice looks on a clinical system's card; empty: as its severity says.",
    )
    priority = models.PositiveIntegerField(
        default=100, help_text="Among advice of the same severity, lower numbers are given first."
    )
    enabled = models.BooleanField(default=True)
    pattern = models.CharField(max_length=20, choices=list(PATTERNS.items()), default=SINGLE)
    count = models.PositiveIntegerField(
        null=True, blank=True, help_text="How many matching events, or days in a row (the patterns that count)."
    )
    window_hours = models.FloatField(null=True, blank=True, help_text="Time window of the pattern, in hours.")
    revision = models.PositiveIntegerField(default=1, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return f"{self.key}: {self.name}"

    def clean(self) -> None:
        if self.pattern in (COUNT, DAYS) and (self.count is None or self.count < 2):
            raise ValidationError({"count": "How many: a whole number of at least 2."})
        if self.pattern not in (SINGLE, DAYS) and (self.window_hours is None or self.window_hours <= 0):
            raise ValidationError({"window_hours": "The time window must be more than 0 hours."})


class RuleStep(models.Model):
    """One event of a rule's pattern (a one-event rule has exactly one)."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField(default=1, help_text="1 for the first event, 2 for the next …")
    fact_type = models.CharField("event type", max_length=50)

    class Meta:
        ordering = ["rule", "position"]
        constraints = [models.UniqueConstraint(fields=["rule", "position"], name="rules_step_unique_position")]

    def __str__(self) -> str:
        return f"{self.position}. {self.fact_type}"


class RuleCondition(models.Model):
    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="conditions")
    step = models.PositiveSmallIntegerField(default=1, help_text="Which event of the pattern (1 for one-event rules).")
    group = models.PositiveSmallIntegerField(
        default=1, help_text="Conditions with the same group number are alternatives (any); all groups must hold."
    )
    position = models.PositiveSmallIntegerField(default=0)
    field = models.CharField(max_length=80)
    operator = models.CharField(max_length=10, choices=OPERATOR_CHOICES)
    negate = models.BooleanField("not", default=False)
    value = models.CharField(
        max_length=300, blank=True, help_text="A value, or a comma-separated list for “is one of”."
    )
    parameter = models.CharField(max_length=60, blank=True, help_text="Name of one of this rule's parameters.")

    class Meta:
        ordering = ["rule", "step", "group", "position", "id"]

    def __str__(self) -> str:
        return f"{self.field} {self.operator} {self.value or self.parameter}"


class RuleParameter(models.Model):
    """A named, typed number (or choice) a clinician tunes without touching the rule's structure."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="parameters")
    name = models.CharField(max_length=60)
    label = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=10, choices=KIND_CHOICES, default="number")
    value = models.CharField(max_length=300)
    unit = models.CharField(max_length=30, blank=True)

    class Meta:
        ordering = ["rule", "id"]
        constraints = [models.UniqueConstraint(fields=["rule", "name"], name="rules_parameter_unique_name")]

    def __str__(self) -> str:
        return f"{self.label or self.name} = {self.value} {self.unit}".strip()


class RulesetSettings(models.Model):
    """The draft's ruleset-wide settings (one row), published with every version."""

    advice_limit = models.PositiveSmallIntegerField(
        "most pieces of advice per event",
        default=3,
        help_text="An event gives at most this many pieces of advice, most urgent first, then by priority.",
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )

    class Meta:
        verbose_name = "ruleset settings"
        verbose_name_plural = "ruleset settings"

    def __str__(self) -> str:
        return "Ruleset settings"


class RulesetVersion(models.Model):
    """An immutable snapshot of the whole ruleset. The highest number is live."""

    number = models.PositiveIntegerField(unique=True)
    snapshot = models.JSONField(help_text="Every rule's spec, disabled ones included.")
    settings = models.JSONField(default=dict, blank=True, help_text="The ruleset's own settings (advice limit).")
    comment = models.TextField(blank=True)
    rolled_back_from = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-number"]
        get_latest_by = "number"

    def __str__(self) -> str:
        return f"Version {self.number}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ValidationError("A published version never changes; publish a new one instead.")
        super().save(*args, **kwargs)


class RuleChange(models.Model):
    """Audit trail: every saved change to the draft, with the spec before and after.

    A change of the ruleset's own settings is recorded with a blank ``rule_key``
    (``SETTINGS_KEY``) and the settings before and after. ``origin`` says what made the change:
    a clinician's hand edit, or a whole-draft operation (roll back, pack import, pack install or
    upgrade, discard) that wrote every change it caused.
    """

    SETTINGS_KEY = ""

    class Origin(models.TextChoices):
        EDIT = "edit", "hand edit"
        ROLLBACK = "rollback", "roll back"
        IMPORT = "import", "pack import"
        INSTALL = "install", "pack install"
        UPGRADE = "upgrade", "pack upgrade"
        DISCARD = "discard", "draft discarded"

    rule_key = models.CharField(max_length=80, db_index=True, blank=True)
    action = models.CharField(max_length=20)  # created, changed, deleted
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    origin = models.CharField(max_length=20, choices=Origin.choices, default=Origin.EDIT)
    origin_version = models.PositiveIntegerField(
        null=True, blank=True, help_text="The version a roll back or a discard brought the draft back to."
    )
    changed_at = models.DateTimeField(auto_now_add=True)
    changed_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-changed_at", "-id"]

    def __str__(self) -> str:
        return f"{self.rule_key or 'ruleset settings'} {self.action} {self.changed_at:%Y-%m-%d %H:%M}"

    @property
    def is_settings(self) -> bool:
        return self.rule_key == self.SETTINGS_KEY

    @property
    def origin_label(self) -> str:
        """Where the change came from, in words: "hand edit", "roll back to version 3", …"""
        if self.origin == self.Origin.ROLLBACK and self.origin_version:
            return f"roll back to version {self.origin_version}"
        if self.origin == self.Origin.DISCARD and self.origin_version:
            return f"draft discarded (back to version {self.origin_version})"
        return self.get_origin_display() or "not recorded"


class Job(models.Model):
    """Work that outlives a request (a simulation, a re-evaluation, an import).

    A worker process takes it from the task queue (``rules.jobs``); its progress and result are
    stored here, so any web process on any host can show them, and a restart loses nothing.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "waiting for a worker"
        RUNNING = "running", "running"
        DONE = "done", "finished"
        FAILED = "failed", "failed"
        CUT_OFF = "cut_off", "cut off (its worker stopped)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=40, db_index=True)
    title = models.CharField(max_length=200)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Written by the running worker every few seconds: a running job whose heartbeat stopped
    # was cut off (its process was killed), and the sweep marks it so.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["kind", "status"])]

    def __str__(self) -> str:
        return f"{self.title} ({self.get_status_display()})"

    @property
    def finished(self) -> bool:
        return self.status in {self.Status.DONE, self.Status.FAILED, self.Status.CUT_OFF}


class PeriodicRun(models.Model):
    """One row per periodic job and time slot: the unique pair makes exactly one worker, of
    however many on however many hosts, enqueue each periodic run."""

    name = models.CharField(max_length=80)
    slot = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "slot"], name="rules_periodic_once_per_slot")]

    def __str__(self) -> str:
        return f"{self.name} #{self.slot}"
