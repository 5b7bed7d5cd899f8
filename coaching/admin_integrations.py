"""Admin for what connects the product to gyms' own systems: webhook endpoints and their
deliveries (every attempt, with "send again"), and the override reasons clinicians offer with
each card.

Deliveries are told in words (what changed, for whom, how each try went); their payload is
what the gym's system reads, so it is not shown here.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import slugify

from . import webhooks, words
from .models import OverrideReason, WebhookAttempt, WebhookEndpoint, WebhookMessage

SECRET_SHOWN_ONCE = "The signing secret of {url}: {secret} (copy it now: it will not be shown again)."  # noqa: S105
ENDPOINT_ENABLED = "Deliveries to {url} start again."
RESENT = "{count} deliveries will be sent again within a minute, each with its own webhook-id as before."
RECENT = 20  # deliveries listed on an endpoint's page
EVENT_WORDS = {
    "advice.created": "new advice",
    "advice.withdrawn": "advice withdrawn",
    "member.referral_changed": "a referral began or ended",
    "member.erased": "a member erased",
}


def _events_words(events: list[str]) -> str:
    return ", ".join(EVENT_WORDS.get(e, e) for e in events)


def _endpoint_state(endpoint: WebhookEndpoint) -> str:
    if endpoint.disabled_at:
        return f"switched off {words.moment(endpoint.disabled_at)}, after failing for days"
    if endpoint.failing_since:
        return f"failing since {words.moment(endpoint.failing_since)} (still retried)"
    return "receiving"


class EndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https", label="Address (https://…)")
    events = forms.MultipleChoiceField(
        choices=[(code, text) for code, text in EVENT_WORDS.items()],
        widget=forms.CheckboxSelectMultiple,
        initial=list(EVENT_WORDS),
        help_text="What to send to this address.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["gym", "events", "description"]  # and the declared url

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        url = cleaned.get("url")
        if url:
            problem = webhooks.url_problem(url)
            if problem:
                self.add_error("url", problem)
        return cleaned


class AttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ["when", "answer", "took"]
    readonly_fields = fields
    verbose_name = "try"
    verbose_name_plural = "tries"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="When")
    def when(self, attempt: WebhookAttempt) -> str:
        return words.moment(attempt.at)

    @admin.display(description="Answer")
    def answer(self, attempt: WebhookAttempt) -> str:
        if attempt.status_code:
            return f"HTTP {attempt.status_code}" + (" (received)" if 200 <= attempt.status_code < 300 else "")
        return attempt.error or "no answer"

    @admin.display(description="Took")
    def took(self, attempt: WebhookAttempt) -> str:
        return f"{attempt.duration_ms:,} ms"


def delivery_what(message: WebhookMessage) -> str:
    """The change a delivery carries, in words: "New advice: “Stop when it hurts”, for member m-1"."""
    data = message.payload.get("data", {}) if isinstance(message.payload, dict) else {}
    member = data.get("member")
    rule = data.get("rule") if isinstance(data.get("rule"), dict) else {}
    text = EVENT_WORDS.get(message.event_type, message.event_type).capitalize()
    if rule.get("name"):
        text += f": “{rule['name']}”"
    return f"{text}, for member {member}" if member else text


def _delivery_state(message: WebhookMessage) -> str:
    if message.delivered_at:
        return f"received {words.moment(message.delivered_at)}"
    if message.given_up_at:
        return f"given up {words.moment(message.given_up_at)}"
    if message.attempts:
        return f"retrying; next try {words.moment(message.next_attempt_at)}"
    return "waiting to be sent"


class ChangeKindFilter(admin.SimpleListFilter):
    title = "what changed"
    parameter_name = "kind"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(code, text.capitalize()) for code, text in EVENT_WORDS.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[WebhookMessage]) -> QuerySet[WebhookMessage]:
        return queryset.filter(event_type=self.value()) if self.value() else queryset


@admin.register(WebhookMessage)
class WebhookMessageAdmin(admin.ModelAdmin):
    list_display = ["what", "endpoint", "gym", "created", "state", "attempts"]
    list_filter = [ChangeKindFilter, "endpoint__gym", "endpoint"]
    list_select_related = ["endpoint__gym"]
    fields = ["what", "endpoint", "gym", "msg_id", "created", "state", "attempts"]
    readonly_fields = fields
    inlines = [AttemptInline]
    actions = ["send_again"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="What changed")
    def what(self, message: WebhookMessage) -> str:
        return delivery_what(message)

    @admin.display(description="Gym", ordering="endpoint__gym__name")
    def gym(self, message: WebhookMessage) -> str:
        return message.endpoint.gym.name

    @admin.display(description="Made", ordering="created_at")
    def created(self, message: WebhookMessage) -> str:
        return words.moment(message.created_at)

    @admin.display(description="Delivery")
    def state(self, message: WebhookMessage) -> str:
        return _delivery_state(message)

    @admin.action(description="Send again", permissions=["view"])
    def send_again(self, request: HttpRequest, queryset: QuerySet[WebhookMessage]) -> None:
        count = 0
        for message in queryset:
            webhooks.message_resend(message=message)
            count += 1
        messages.success(request, RESENT.format(count=count))


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = EndpointForm
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ["url", "gym", "sends", "state", "created"]
    list_filter = ["gym"]
    list_select_related = ["gym"]
    actions = ["enable", "rotate_secret"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return ["gym", "url", "events", "description"]
        return ["gym_name", "url", "sends", "description", "state", "created", "secret_rotated", "deliveries"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return []
        return ["gym_name", "url", "sends", "state", "created", "secret_rotated", "deliveries"]

    @admin.display(description="Recent deliveries")
    def deliveries(self, endpoint: WebhookEndpoint) -> SafeString:
        recent = list(endpoint.messages.order_by("-created_at", "-id")[:RECENT])
        if not recent:
            return format_html("{}", "None yet.")
        rows = format_html_join(
            "",
            '<li><a href="{}">{}</a>: made {}; {}</li>',
            (
                (
                    reverse("admin:coaching_webhookmessage_change", args=[m.pk]),
                    delivery_what(m),
                    words.moment(m.created_at),
                    _delivery_state(m),
                )
                for m in recent
            ),
        )
        every = reverse("admin:coaching_webhookmessage_changelist") + f"?endpoint__id__exact={endpoint.pk}"
        return format_html('<ul>{}</ul><a href="{}">Every delivery to this address</a>', rows, every)

    @admin.display(description="Gym")
    def gym_name(self, endpoint: WebhookEndpoint) -> str:
        return endpoint.gym.name

    @admin.display(description="Sends")
    def sends(self, endpoint: WebhookEndpoint) -> str:
        return _events_words(endpoint.events)

    @admin.display(description="State")
    def state(self, endpoint: WebhookEndpoint) -> str:
        return _endpoint_state(endpoint)

    @admin.display(description="Added", ordering="created_at")
    def created(self, endpoint: WebhookEndpoint) -> str:
        return words.moment(endpoint.created_at)

    @admin.display(description="Secret last renewed")
    def secret_rotated(self, endpoint: WebhookEndpoint) -> str:
        return words.moment(endpoint.secret_rotated_at) if endpoint.secret_rotated_at else "never"

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool) -> None:
        if change:
            obj.save(update_fields=["description"])
            return
        endpoint, secret = webhooks.endpoint_register(
            gym=form.cleaned_data["gym"],
            url=form.cleaned_data["url"],
            events=list(form.cleaned_data["events"]),
            description=form.cleaned_data.get("description", ""),
        )
        obj.pk, obj.created_at, obj.secret = endpoint.pk, endpoint.created_at, endpoint.secret
        obj._state.adding = False
        obj._state.db = endpoint._state.db
        messages.warning(request, SECRET_SHOWN_ONCE.format(url=endpoint.url, secret=secret))

    def delete_model(self, request: HttpRequest, obj: WebhookEndpoint) -> None:
        webhooks.endpoint_delete(endpoint=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            webhooks.endpoint_delete(endpoint=endpoint)

    @admin.action(description="Start deliveries again (after a failure)", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            webhooks.endpoint_enable(endpoint=endpoint)
            messages.success(request, ENDPOINT_ENABLED.format(url=endpoint.url))

    @admin.action(description="Renew the signing secret (the old one still signs for a day)", permissions=["change"])
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            secret = webhooks.endpoint_secret_rotate(endpoint=endpoint)
            messages.warning(request, SECRET_SHOWN_ONCE.format(url=endpoint.url, secret=secret))


class OverrideReasonForm(forms.ModelForm):
    code = forms.SlugField(
        required=False,
        max_length=60,
        label="Code",
        help_text="What clinical systems send back; left empty, it is made from the wording. Never reuse one.",
    )

    class Meta:
        model = OverrideReason
        fields = ["display", "code", "active", "position"]
        labels = {"display": "Wording", "active": "Offered", "position": "Order"}
        help_texts = {
            "display": "How the reason reads in the gym's or clinic's system, e.g. “Already addressed”.",
            "active": "Offered with every card; a reason no longer offered stays on the feedback that used it.",
        }

    def clean_code(self) -> str:
        wording = self.cleaned_data.get("display") or self.data.get("display", "")
        code = self.cleaned_data.get("code") or slugify(wording)
        if not code:
            raise forms.ValidationError("Give the reason a wording.")
        if OverrideReason.objects.exclude(pk=self.instance.pk).filter(code=code).exists():
            raise forms.ValidationError(f"Another reason already has the code “{code}”; choose another.")
        return code


@admin.register(OverrideReason)
class OverrideReasonAdmin(admin.ModelAdmin):
    form = OverrideReasonForm
    list_display = ["display", "code", "active", "position"]
    list_editable = ["active", "position"]
    list_display_links = ["display"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["code"] if obj is not None else []  # feedback already stored refers to it
