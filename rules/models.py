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
    display_days = models.PositiveIntegerField(
        default=14, help_text="Days its advice stays worth showing after the event it is about (0: until withdrawn)."
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
    """An immutable snapshot of the whole ruleset. The highest number is live.

    ``origin`` says how it went live: through a request another clinician approved (its
    ``request``, with what the approvers saw), an operator's command, or the default pack's first
    install; empty for versions published before it was recorded, or by code of one's own.
    """

    class Origin(models.TextChoices):
        APPROVED = "approved", "approved in the admin"
        OPERATOR = "operator", "an operator's command"
        INSTALL = "install", "the default rule pack's first install"
        DIRECT = "", "published directly"

    number = models.PositiveIntegerField(unique=True)
    snapshot = models.JSONField(help_text="Every rule's spec, disabled ones included.")
    settings = models.JSONField(default=dict, blank=True, help_text="The ruleset's own settings (advice limit).")
    comment = models.TextField(blank=True)
    rolled_back_from = models.PositiveIntegerField(
        null=True, blank=True, help_text="The earlier version this one brought back (a roll back to it)."
    )
    origin = models.CharField(max_length=20, choices=Origin.choices, default=Origin.DIRECT, blank=True)
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
    # An operator's publish, recorded with the changes of the draft it published (no rule of its own).
    PUBLISHED = "published"

    class Origin(models.TextChoices):
        EDIT = "edit", "hand edit"
        ROLLBACK = "rollback", "roll back"
        IMPORT = "import", "pack import"
        INSTALL = "install", "pack install"
        UPGRADE = "upgrade", "pack upgrade"
        DISCARD = "discard", "draft discarded"
        OPERATOR = "operator", "the operator's pack import, published at once"

    rule_key = models.CharField(max_length=80, db_index=True, blank=True)
    action = models.CharField(max_length=20)  # created, changed, deleted; published (the whole ruleset)
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
        if self.action == self.PUBLISHED:
            what = "The whole ruleset"
        elif self.rule_key == self.SETTINGS_KEY:
            what = "The ruleset settings"
        else:
            what = f"“{(self.after or self.before or {}).get('name') or self.rule_key}”"
        when = f"{self.changed_at.day} {self.changed_at:%b %Y, %H:%M}" if self.changed_at else ""
        return f"{what}: {self.action_words}, {when}".rstrip(", ")

    @property
    def is_settings(self) -> bool:
        return self.rule_key == self.SETTINGS_KEY and self.action != self.PUBLISHED

    @property
    def is_publish(self) -> bool:
        return self.action == self.PUBLISHED

    @property
    def action_words(self) -> str:
        """The action as a clinician reads it: "new rule", "changed", "deleted", "published"."""
        return {"created": "new rule"}.get(self.action, self.action)

    @property
    def origin_label(self) -> str:
        """Where the change came from, in words: "hand edit", "roll back to version 3", …"""
        if self.origin == self.Origin.ROLLBACK and self.origin_version:
            return f"roll back to version {self.origin_version}"
        if self.origin == self.Origin.DISCARD and self.origin_version:
            return f"draft discarded (back to version {self.origin_version})"
        if self.origin == self.Origin.OPERATOR and self.origin_version:
            return f"the operator's pack import, published at once as version {self.origin_version}"
        return self.get_origin_display() or "not recorded"


class PublishRequest(models.Model):
    """A clinician's request to publish the draft, or to roll back to an earlier version, waiting
    for another clinician's approval (``rules.governance``).

    What the approvers see is frozen when the request is made: the rules and settings that would
    go live, the diff against the live version, the summary and burden of a simulation of exactly
    those rules, the comment, and the reason given for a draft flagged for its burden. A change of
    the draft after a request to publish it, or another version going live, makes it void.
    """

    class Kind(models.TextChoices):
        PUBLISH = "publish", "publish the draft"
        ROLLBACK = "rollback", "roll back"

    class Status(models.TextChoices):
        PENDING = "pending", "waiting for approval"
        PUBLISHED = "published", "approved and published"
        VOID = "void", "void"
        WITHDRAWN = "withdrawn", "withdrawn"

    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PUBLISH)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    rollback_to = models.PositiveIntegerField(null=True, blank=True, help_text="The version a roll back brings back.")
    live_version = models.PositiveIntegerField(default=0, help_text="The live version when it was requested (0: none).")
    fingerprint = models.CharField(max_length=64, blank=True, help_text="A digest of the rules it would publish.")
    specs = models.JSONField(default=list, help_text="The rules it would publish.")
    settings = models.JSONField(default=dict, blank=True)
    comment = models.TextField()
    reason = models.TextField(blank=True, default="", help_text="Why a draft flagged for its burden should go live.")
    diff = models.JSONField(default=dict, help_text="What it changes against the live version, in words.")
    simulation = models.JSONField(null=True, blank=True, help_text="The summary of the simulation it was made with.")
    burden = models.JSONField(null=True, blank=True, help_text="The burden of the live version and the request's.")
    simulation_job = models.CharField(max_length=40, blank=True, default="")
    approvals_needed = models.PositiveSmallIntegerField(default=1)
    requested_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.TextField(blank=True, default="")
    version = models.OneToOneField(
        RulesetVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="request"
    )

    class Meta:
        ordering = ["-requested_at", "-id"]
        verbose_name = "request to publish"
        verbose_name_plural = "requests to publish"

    def __str__(self) -> str:
        if self.kind == self.Kind.ROLLBACK:
            return f"Request to roll back to version {self.rollback_to}"
        if self.requested_at is None:
            return "Request to publish the draft"
        return f"Request to publish the draft of {self.requested_at.day} {self.requested_at:%b %Y, %H:%M}"


class PublishApproval(models.Model):
    """One clinician's approval of a request (never its author's)."""

    request = models.ForeignKey(PublishRequest, on_delete=models.CASCADE, related_name="approvals")
    approved_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(auto_now_add=True)
    comment = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["approved_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["request", "approved_by"], name="rules_approval_once_per_clinician")
        ]

    def __str__(self) -> str:
        return f"Approved by {self.approved_by}"


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
    # A job done in parts (``rules.jobs.job_start_parts``): each part is a job of its own that
    # any worker takes; the whole has no queue entry and gets the parts' combined result.
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="parts")
    part = models.PositiveSmallIntegerField(null=True, blank=True)

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
