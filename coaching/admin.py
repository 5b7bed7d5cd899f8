"""Admin for operators (gyms) and clinicians (members, events, advice: read-only)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from . import services
from .models import Advice, Event, Gym, Member

REEVALUATED = "Re-evaluated {events} events; {failed} failed."
KEY_SHOWN_ONCE = "API key for {gym}: {key} (copy it now: it is not stored and will not be shown again)."


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Gym)
class GymAdmin(admin.ModelAdmin):
    list_display = ["name", "key_prefix", "created_at"]
    search_fields = ["name"]
    readonly_fields = ["key_prefix", "created_at"]
    fields = ["name", "key_prefix", "created_at"]
    actions = ["rotate_key"]

    def save_model(self, request: HttpRequest, obj: Gym, form: Any, change: bool) -> None:
        if change:
            obj.save(update_fields=["name"])
            return
        gym, key = services.gym_create(name=obj.name)
        obj.pk, obj.key_hash, obj.key_prefix, obj.created_at = gym.pk, gym.key_hash, gym.key_prefix, gym.created_at
        obj._state.adding = False
        obj._state.db = gym._state.db
        messages.warning(request, KEY_SHOWN_ONCE.format(gym=gym.name, key=key))

    @admin.action(description="Issue a new API key (the old one stops working)")
    def rotate_key(self, request: HttpRequest, queryset: QuerySet[Gym]) -> None:
        for gym in queryset:
            key = services.gym_key_rotate(gym=gym)
            messages.warning(request, KEY_SHOWN_ONCE.format(gym=gym.name, key=key))


@admin.register(Member)
class MemberAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["external_id", "gym", "created_at"]
    list_filter = ["gym"]
    search_fields = ["external_id"]
    list_select_related = ["gym"]
    readonly_fields = ["gym", "external_id", "profile", "created_at"]


@admin.register(Event)
class EventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["external_id", "member", "type", "occurred_at", "evaluated", "gym", "received_at"]
    list_filter = ["type", "evaluated", "gym"]
    search_fields = ["external_id", "member__external_id"]
    list_select_related = ["member", "gym"]
    date_hierarchy = "occurred_at"
    readonly_fields = [
        "gym",
        "member",
        "external_id",
        "type",
        "occurred_at",
        "utc_offset_minutes",
        "data",
        "figures",
        "content_hash",
        "evaluated",
        "evaluation_error",
        "received_at",
    ]
    actions = ["reevaluate"]

    @admin.action(description="Re-run evaluation (no duplicate advice)")
    def reevaluate(self, request: HttpRequest, queryset: QuerySet[Event]) -> None:
        earliest: dict[int, Event] = {}
        for event in queryset.select_related("member").order_by("occurred_at", "external_id"):
            earliest.setdefault(event.member_id, event)
        judged = failed = 0
        for event in earliest.values():
            result = services.events_reevaluate(member=event.member, since=event.occurred_at)
            judged, failed = judged + result.events, failed + result.failed
        messages.info(request, REEVALUATED.format(events=judged, failed=failed))


@admin.register(Advice)
class AdviceAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["rule_key", "severity", "category", "member", "event", "occurred_at", "created_at"]
    list_filter = ["severity", "category", "rule_key", "gym"]
    search_fields = ["rule_key", "member__external_id", "event__external_id", "message"]
    list_select_related = ["member", "event", "gym"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "gym",
        "member",
        "event",
        "rule_key",
        "rule_name",
        "rule_version",
        "category",
        "severity",
        "message",
        "matched_events",
        "source_label",
        "card",
        "occurred_at",
        "created_at",
    ]
