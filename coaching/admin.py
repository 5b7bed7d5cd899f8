"""Admin for operators (gyms) and clinicians (members, events, advice).

The coaching records are read-only here; the only writes are actions that call a service and
need their own permission (``coaching.clear_referral``, ``coaching.reevaluate_event``), so a
staff user who may only view records never runs one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator

from . import selectors, services
from .catalog import FACT_TYPES
from .models import Advice, Event, Gym, Member

REEVALUATED = "Re-evaluated {events} events; {failed} failed."
KEY_SHOWN_ONCE = "API key for {gym}: {key} (copy it now: it is not stored and will not be shown again)."

# What a clinician reads about referrals (tests reuse these).
REFERRAL_COLUMN = "Since {since}: {rule}"
REFERRAL_IN_WORDS = (
    "Under referral since {since}, by the rule “{rule}” ({key}){fired_on}. "
    "Until a physician clears the member, only advice to see a physician or to stop running is given."
)
REFERRAL_FIRED_ON = ", which fired on the event {event} ({what}, {occurred})"
REFERRAL_NONE = "Not under referral."
REFERRAL_LAST_CLEARED = "Last cleared by a physician on {at}{by}."
REFERRAL_CLEARED = (
    "Marked {members} as cleared by a physician: the referral has ended and their advice was judged again."
)
REFERRAL_CLEARED_NOT_JUDGED = (
    "The clearance of {member} is recorded, but their advice could not be judged again yet; "
    "it will be once the evaluation runs again (an operator's “reevaluate --pending”)."
)
REFERRAL_NOTHING_TO_CLEAR = "Not under referral, so there was nothing to clear: {members}."
WITHDRAWN_COLUMN = "Withdrawn {at}: {reason}"


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


def _moment(at: datetime) -> str:
    return timezone.localtime(at).strftime("%Y-%m-%d %H:%M")


def _names(members: list[Member]) -> str:
    return ", ".join(member.external_id for member in members)


class UnderReferralFilter(admin.SimpleListFilter):
    title = "under referral"
    parameter_name = "referral"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Member]) -> QuerySet[Member]:
        if self.value() == "yes":
            return queryset.filter(referral_since__isnull=False)
        if self.value() == "no":
            return queryset.filter(referral_since__isnull=True)
        return queryset


@admin.register(Member)
class MemberAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["external_id", "gym", "under_referral", "created_at"]
    list_filter = [UnderReferralFilter, "gym"]
    search_fields = ["external_id"]
    list_select_related = ["gym"]
    fields = ["gym", "external_id", "referral", "profile", "created_at"]
    readonly_fields = ["gym", "external_id", "referral", "profile", "created_at"]
    actions = ["mark_cleared"]

    @admin.display(description="Under referral", ordering="referral_since")
    def under_referral(self, member: Member) -> str:
        if member.referral_since is None:
            return "—"
        return REFERRAL_COLUMN.format(since=_moment(member.referral_since), rule=member.referral_rule_name)

    @admin.display(description="Referral")
    def referral(self, member: Member) -> str:
        if member.referral_since is None:
            cleared = selectors.referral_clearance_last(member=member)
            if cleared is None:
                return REFERRAL_NONE
            by = f" (recorded by {cleared.recorded_by})" if cleared.recorded_by else ""
            return f"{REFERRAL_NONE} {REFERRAL_LAST_CLEARED.format(at=_moment(cleared.occurred_at), by=by)}"
        event = member.referral_event
        fired_on = ""
        if event is not None:
            what = FACT_TYPES[event.type][0].lower() if event.type in FACT_TYPES else event.type
            fired_on = REFERRAL_FIRED_ON.format(event=event.external_id, what=what, occurred=_moment(event.occurred_at))
        words = REFERRAL_IN_WORDS.format(
            since=_moment(member.referral_since),
            rule=member.referral_rule_name,
            key=member.referral_rule_key,
            fired_on=fired_on,
        )
        if event is None:
            return words
        url = reverse("admin:coaching_event_change", args=[event.pk])
        return format_html('{} <a href="{}">Show the event</a>', words, url)

    def has_clear_referral_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.clear_referral")

    @admin.action(description="Mark cleared by a physician (ends the referral)", permissions=["clear_referral"])
    def mark_cleared(self, request: HttpRequest, queryset: QuerySet[Member]) -> None:
        self._referrals_clear(request, list(queryset.select_related("gym")))

    def _referrals_clear(self, request: HttpRequest, members: list[Member]) -> None:
        cleared, not_referred = [], []
        for member in members:
            if member.referral_since is None:
                not_referred.append(member)
                continue
            event = services.referral_clear(member=member, user=request.user)
            if event.evaluated:
                cleared.append(member)
            else:
                messages.error(request, REFERRAL_CLEARED_NOT_JUDGED.format(member=member.external_id))
        if cleared:
            messages.success(request, REFERRAL_CLEARED.format(members=_names(cleared)))
        if not_referred:
            messages.info(request, REFERRAL_NOTHING_TO_CLEAR.format(members=_names(not_referred)))

    def get_urls(self) -> list[URLPattern]:
        clear = path(
            "<path:object_id>/clear-referral/",
            self.admin_site.admin_view(self.clear_referral_view),
            name="coaching_member_clear_referral",
        )
        return [clear, *super().get_urls()]

    def clear_referral_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The "Mark cleared" button: a confirmation page, then the same service as the action."""
        if not self.has_clear_referral_permission(request):
            raise PermissionDenied
        member = self.get_object(request, unquote(object_id))
        if member is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        change_url = reverse("admin:coaching_member_change", args=[member.pk])
        if request.method == "POST":
            self._referrals_clear(request, [member])
            return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Mark {member.external_id} as cleared by a physician",
            "member": member,
            "referral": self.referral(member),
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/coaching/member/clear_referral.html", context)

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], add: bool = False, change: bool = False, **kwargs: Any
    ) -> HttpResponse:
        member = kwargs.get("obj")
        context["can_clear_referral"] = (
            member is not None and member.referral_since is not None and self.has_clear_referral_permission(request)
        )
        return super().render_change_form(request, context, add=add, change=change, **kwargs)


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
        "recorded_by",
        "received_at",
    ]
    actions = ["reevaluate"]

    def has_reevaluate_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.reevaluate_event")

    @admin.action(description="Re-run evaluation (no duplicate advice)", permissions=["reevaluate"])
    def reevaluate(self, request: HttpRequest, queryset: QuerySet[Event]) -> None:
        earliest: dict[int, Event] = {}
        for event in queryset.select_related("member").order_by("occurred_at", "external_id"):
            earliest.setdefault(event.member_id, event)
        judged = failed = 0
        for event in earliest.values():
            result = services.events_reevaluate(member=event.member, since=event.occurred_at)
            judged, failed = judged + result.events, failed + result.failed
        messages.info(request, REEVALUATED.format(events=judged, failed=failed))


class WithdrawnFilter(admin.SimpleListFilter):
    title = "current or withdrawn"
    parameter_name = "withdrawn"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("no", "Current"), ("yes", "Withdrawn")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Advice]) -> QuerySet[Advice]:
        if self.value() == "no":
            return queryset.filter(withdrawn_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(withdrawn_at__isnull=False)
        return queryset


@admin.register(Advice)
class AdviceAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["rule_key", "severity", "category", "member", "event", "occurred_at", "created_at", "withdrawn"]
    list_filter = [WithdrawnFilter, "severity", "category", "rule_key", "gym"]
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
        "refers",
        "trigger",
        "created_at",
        "withdrawn_at",
        "withdrawn_by",
        "withdrawn_reason",
        "changed_at",
    ]

    @admin.display(description="Current or withdrawn", ordering="withdrawn_at")
    def withdrawn(self, advice: Advice) -> str:
        if advice.withdrawn_at is None:
            return "Current"
        reason = Truncator(advice.withdrawn_reason).chars(120)
        return WITHDRAWN_COLUMN.format(at=_moment(advice.withdrawn_at), reason=reason)
