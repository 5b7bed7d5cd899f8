"""Gyms, their members, the events they send and the advice the rules produced."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.db import models
from django.utils import timezone

from . import words
from .catalog import CATEGORY_CODES, FACT_TYPES, SEVERITY_CODES


class Gym(models.Model):
    """A tenant, with its API keys (``GymKey``) and webhook endpoints (``WebhookEndpoint``)."""

    name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Read with the gym on every request, so that an ingest of a gym without webhooks costs no query.
    webhooks_active = models.BooleanField(default=False, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


EARLIEST = datetime(1, 1, 1, tzinfo=UTC)  # before any event


class Member(models.Model):
    gym = models.ForeignKey(Gym, on_delete=models.CASCADE, related_name="members")
    external_id = models.CharField(max_length=100, help_text="The gym's own id of the member.")
    profile = models.JSONField(
        default=dict, blank=True, help_text="Merged from the member's profile events, latest last."
    )
    # The referral in force after the member's latest event (kept by each evaluation, so the
    # admin can list members under referral).
    referral_since = models.DateTimeField(null=True, blank=True, help_text="Under referral since this moment.")
    referral_rule_key = models.CharField(max_length=100, blank=True, default="")
    referral_rule_name = models.CharField(max_length=200, blank=True, default="")
    referral_event = models.ForeignKey(
        "Event", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="The referring event."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Raised by every write to the member's events or advice: an ingest that judged without
    # a lock writes only if the member is still at the revision it read (else it reads and judges
    # again), so evaluations of one member never interleave.
    revision = models.PositiveBigIntegerField(default=0, editable=False)
    # What judging keeps after the member's latest event ("through", its order key): the decision
    # policy's memory ("decision", ``rules.evaluation.DecisionState``) and the running state of
    # the figures ("figures", ``coaching.figures.History``), so that an event later than all
    # others is judged without reading the member's advice or whole history.
    kept_state = models.JSONField(null=True, blank=True, editable=False)
    # An ingest reads the member's events from this moment on: the latest event's, less the
    # live rules' history window, when kept_state holds the running state of the figures; the
    # beginning of time otherwise (the whole history is read and counted).
    read_from = models.DateTimeField(default=EARLIEST, editable=False)

    class Meta:
        ordering = ["gym", "external_id"]
        constraints = [models.UniqueConstraint(fields=["gym", "external_id"], name="member_external_id_unique_per_gym")]
        permissions = [("clear_referral", "Can mark a member's referral cleared")]

    def __str__(self) -> str:
        return self.external_id


EVENT_TYPE_CHOICES = [(name, label) for name, (label, _fields) in FACT_TYPES.items()]


class Event(models.Model):
    # No index of their own: the indexes below start with them (one less to write per event).
    gym = models.ForeignKey(Gym, on_delete=models.CASCADE, related_name="events", db_index=False)
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="events", db_index=False)
    external_id = models.CharField(max_length=100, help_text="The gym's own id of the event.")
    type = models.CharField(max_length=32, choices=EVENT_TYPE_CHOICES)
    occurred_at = models.DateTimeField()
    utc_offset_minutes = models.SmallIntegerField(default=0, help_text="The offset occurred_at was sent with.")
    data = models.JSONField(default=dict, blank=True)
    figures = models.JSONField(
        default=dict, blank=True, help_text="Derived figures as of occurred_at, at the last evaluation."
    )
    content_hash = models.CharField(max_length=64, help_text="Tells an identical repeat from a conflicting one.")
    evaluated = models.BooleanField(default=False)
    evaluation_error = models.TextField(blank=True, default="")
    recorded_by = models.CharField(
        max_length=150, blank=True, default="", help_text="The clinician who recorded it in the admin, if one did."
    )
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["gym", "external_id"], name="event_external_id_unique_per_gym")]
        indexes = [
            models.Index(fields=["member", "occurred_at", "external_id"], name="event_member_time"),
            models.Index(fields=["member", "type", "occurred_at"], name="event_member_type_time"),
            models.Index(fields=["gym", "occurred_at"], name="event_gym_time"),
            models.Index(fields=["evaluated", "occurred_at"], name="event_pending"),
        ]
        permissions = [("reevaluate_event", "Can re-run the evaluation of events")]

    def __str__(self) -> str:
        return f"{words.event_type_words(self.type)} of {words.local_moment(self.occurred_at, self.utc_offset_minutes)}"

    @property
    def sent_timezone(self) -> dt_timezone:
        return dt_timezone(timedelta(minutes=self.utc_offset_minutes))

    @property
    def occurred_at_local(self) -> datetime:
        """occurred_at in the offset the gym sent it with."""
        return self.occurred_at.astimezone(self.sent_timezone)


class Advice(models.Model):
    """One rule's advice for one evaluated event.

    At most one current piece per event and rule. Advice that a later-arriving event (or a
    re-evaluation) showed no longer holds is withdrawn: kept, with ``withdrawn_at`` set.
    """

    # No index of their own: the indexes below start with them (one less to write per advice).
    gym = models.ForeignKey(Gym, on_delete=models.CASCADE, related_name="advice", db_index=False)
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="advice", db_index=False)
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="advice")
    trigger = models.ForeignKey(
        Event,
        on_delete=models.SET_NULL,
        related_name="triggered_advice",
        null=True,
        blank=True,
        help_text="The late event whose arrival re-judged this advice's event, when that is another event.",
    )
    rule_key = models.CharField(max_length=100)
    rule_name = models.CharField(max_length=200)
    rule_version = models.PositiveIntegerField(default=0)
    category = models.CharField(max_length=32, choices=[(c, c) for c in CATEGORY_CODES])
    severity = models.CharField(max_length=16, choices=[(s, s) for s in SEVERITY_CODES])
    message = models.TextField()
    matched_events = models.JSONField(default=list, help_text="The gym's ids of the matched events, in pattern order.")
    source_label = models.CharField(max_length=300, blank=True, default="")
    card = models.JSONField(default=dict, help_text="The advice as an HL7 CDS Hooks card.")
    occurred_at = models.DateTimeField(
        help_text="When the matched situation happened (its newest event); cooldowns count from here."
    )
    refers = models.BooleanField(default=False, help_text="The rule put the member under referral.")
    # The card's stable id in CDS Hooks (feedback names it).
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # Nullable so that adding it to a large table needs no rewrite; advice given before it sorts first.
    priority = models.PositiveIntegerField(
        null=True, blank=True, help_text="The rule's priority when it gave this advice (orders one event's advice)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawn_by = models.ForeignKey(
        Event,
        on_delete=models.SET_NULL,
        related_name="withdrawals",
        null=True,
        blank=True,
        help_text="The late event whose arrival showed the advice no longer holds (none: a re-evaluation).",
    )
    withdrawn_reason = models.TextField(blank=True, default="")
    changed_at = models.DateTimeField(default=timezone.now, help_text="When it was created, or withdrawn if it was.")

    class Meta:
        verbose_name_plural = "advice"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "rule_key"],
                condition=models.Q(withdrawn_at__isnull=True),
                name="advice_current_once_per_event_and_rule",
            )
        ]
        indexes = [
            models.Index(fields=["member", "rule_key", "occurred_at"], name="advice_cooldown"),
            models.Index(fields=["gym", "created_at"], name="advice_gym_feed"),
            models.Index(fields=["member", "created_at"], name="advice_member_feed"),
            models.Index(fields=["gym", "changed_at"], name="advice_gym_changes"),
        ]

    def __str__(self) -> str:
        """ "Stop when it hurts — member m-1042, run of 20 Nov 2026" (select the member and event with it)."""
        event = self.event
        what = words.event_type_words(event.type).lower()
        day = words.day_words(event.occurred_at_local.date())
        return f"{self.rule_name} — member {self.member.external_id}, {what} of {day}"


class RateCounter(models.Model):
    """A gym's requests in one window of the rate limit, raised by one atomic upsert (used when
    no ``CACHE_URL`` names a Redis); a periodic job forgets the ones whose window ended."""

    key = models.CharField(max_length=200, primary_key=True)
    count = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.key}: {self.count}"


class EventImport(models.Model):
    """A file of events uploaded in the admin, and the report of its import.

    The file's content is kept in the database (not on a disk) until a worker has imported
    it, so the worker may run on any host; it is dropped once the import has read it.
    """

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        JSONL = "jsonl", "JSON Lines"

    gym = models.ForeignKey(Gym, on_delete=models.CASCADE, related_name="imports")
    file_name = models.CharField(max_length=200)
    format = models.CharField(max_length=8, choices=Format.choices)
    content = models.BinaryField(editable=False)
    size = models.PositiveBigIntegerField(default=0, help_text="The file's size in bytes.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    job = models.ForeignKey("rules.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    finished = models.BooleanField(default=False)
    problem = models.TextField(blank=True, default="", help_text="Why the file could not be read, if it could not.")
    lines = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    repeated = models.PositiveIntegerField(default=0)
    bad_count = models.PositiveIntegerField(default=0)
    bad_lines = models.JSONField(
        default=list, blank=True, help_text="[line, reason] of each bad line (at most 10,000 are kept)."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        # Importing writes a gym's events in bulk: an operator's task, given on its own.
        default_permissions = ()
        permissions = [("import_events", "Can import a history of events from a file")]

    def __str__(self) -> str:
        return f"{self.file_name} into {self.gym.name}"

    @property
    def job_title(self) -> str:
        return f"Import events from {self.file_name} into {self.gym.name}"


class GymKey(models.Model):
    """One of a gym's API keys: a name, what it may do (scopes), and only a hash of the key.

    A rotated key keeps working until ``expires_at`` (the grace period), so that a gym can switch
    without downtime; a revoked one stops at once."""

    gym = models.ForeignKey(Gym, on_delete=models.CASCADE, related_name="keys")
    name = models.CharField(max_length=100, default="default")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    key_prefix = models.CharField(max_length=16, editable=False, help_text="The start of the key, for recognising it.")
    scopes = models.JSONField(default=list, help_text="What the key may do (coaching.keys.SCOPES).")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Stops working then (a rotated key's grace).")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["gym", "name", "-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"


class OverrideReason(models.Model):
    """A reason a clinician or coach may give for not following a piece of advice (CDS Hooks'
    ``overrideReasons``), from a list clinicians edit."""

    code = models.SlugField(max_length=60, unique=True)
    display = models.CharField(max_length=200, help_text="How the reason reads in a clinical system.")
    active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "code"]

    def __str__(self) -> str:
        return self.display


class AdviceFeedback(models.Model):
    """How a piece of advice landed: accepted or overridden (with reasons), from CDS Hooks or the API."""

    class Outcome(models.TextChoices):
        ACCEPTED = "accepted", "accepted"
        OVERRIDDEN = "overridden", "overridden"

    advice = models.ForeignKey("Advice", on_delete=models.CASCADE, related_name="feedback")
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    reasons = models.JSONField(default=list, help_text="The codes of the override reasons given.")
    comment = models.TextField(blank=True, default="")
    outcome_at = models.DateTimeField()
    source = models.CharField(max_length=20, default="api")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-outcome_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["advice", "outcome", "outcome_at"], name="feedback_once_per_outcome")
        ]

    def __str__(self) -> str:
        return f"{self.outcome} ({self.source})"


class WebhookEndpoint(models.Model):
    """A gym's HTTPS endpoint that receives the changes it subscribed to (``coaching.webhooks``)."""

    gym = models.ForeignKey(Gym, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    events = models.JSONField(default=list)
    description = models.CharField(max_length=200, blank=True, default="")
    secret = models.CharField(max_length=100, editable=False)
    previous_secret = models.CharField(max_length=100, blank=True, default="", editable=False)
    secret_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["gym", "id"]
        verbose_name = "webhook endpoint"

    def __str__(self) -> str:
        return self.url


class WebhookMessage(models.Model):
    """The outbox: one change for one endpoint, written with the change, delivered by workers."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="messages")
    msg_id = models.CharField(max_length=40, unique=True, help_text="The webhook-id header: the same on every retry.")
    event_type = models.CharField(max_length=40)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    next_attempt_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    delivered_at = models.DateTimeField(null=True, blank=True)
    given_up_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "webhook delivery"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_due",
                condition=models.Q(delivered_at__isnull=True, given_up_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.msg_id}"


class WebhookAttempt(models.Model):
    """One try at delivering a message: when, the answer's status or the error."""

    message = models.ForeignKey(WebhookMessage, on_delete=models.CASCADE, related_name="attempts_made")
    at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.status_code or self.error[:40]}"
