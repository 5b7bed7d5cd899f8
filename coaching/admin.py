"""Admin for operators (gyms) and clinicians (members, events, advice).

The coaching records are read-only here; the only writes are actions that call a service and
need their own permission (``coaching.clear_referral``, ``coaching.reevaluate_event``; a gym's
key rotation needs ``coaching.change_gym``), so a staff user who may only view records never
runs one: a POST of it answers 403 (``ActionPermissionMixin``). Webhook endpoints and the
override reasons offered with each card are kept in ``admin_integrations``.

Clinicians read everything in words (``coaching.words``): no JSON, no internal numbers or codes,
one date format. Each member's page is their timeline. A link is only shown to a page the user
may open (``ViewableLinksMixin``), so no click ends on a bare "403 Forbidden".
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.defaultfilters import linebreaksbr
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from rules.admin import ActionPermissionMixin, try_url
from rules.models import Job
from rules.simulation import simulation_subject_events

from . import imports, selectors, services, words
from .catalog import CATEGORIES, REFERRAL_FLOOR, SEVERITIES, SEVERITY_CODES
from .jobs import reevaluate_start
from .keys import SCOPES
from .models import Advice, Event, EventImport, Gym, GymKey, Member

logger = logging.getLogger(__name__)

REEVALUATED = "Re-evaluated {events}; {failed} failed."
REEVALUATE_QUEUED = "Re-running the evaluation of {members} members in the background: see {link}."
# More members than this are re-judged by a worker, not while the clinician's page waits.
REEVALUATE_INLINE_MEMBERS = 20
KEY_SHOWN_ONCE = "API key for {gym}: {key} (copy it now: it is not stored and will not be shown again)."
KEY_NAME_IN_USE = "This gym already has a key named “{name}”: choose another name, or revoke that one first."
KEY_REVOKED = "The key “{name}” of {gym} no longer works."

# What a clinician reads about referrals and clearance, in one sentence (tests reuse these). Every
# moment of a member's own is in the member's local time, with its offset.
REFERRAL_COLUMN = "Since {since}: {rule}"
REFERRAL_IN_WORDS = (
    "Under referral since {since}, when the rule “{rule}” gave its advice{fired_on}; {cleared}. "
    "Until a physician clears the member, only advice to see a physician or to stop running is given."
)
REFERRAL_FIRED_ON = " on the {what} of that moment"
REFERRAL_NOT_CLEARED = "no physician has cleared the member since"
REFERRAL_CLEARED_BEFORE = "the last clearance by a physician, on {at}{by}, came before it"
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

# The member's timeline (tests reuse these).
TIMELINE_REFERRAL = (
    "Under referral at the time (since {since}, by “{rule}”): only advice of these kinds was given: {kinds}."
)
TIMELINE_STARTED_REFERRAL = "This advice put the member under referral."
TIMELINE_WITHDRAWN = "Withdrawn {at}"
TIMELINE_NO_ADVICE = "No advice."
TIMELINE_HELD_FAILED = "What the rules held back could not be worked out just now ({error})."
TIMELINE_NOT_JUDGED = "Not judged yet: the evaluation of this event failed or is still to run ({error})."
TIMELINE_SIMULATION = (
    "Beside what each event got, the advice the simulated draft gives it: nothing of it was stored or sent."
)
PROFILE_EMPTY = "Nothing recorded yet."
SENT_BY_THE_GYM = "Sent by the gym"
RECORDED_IN_THE_ADMIN = "Recorded in the admin by {name}"
JUDGED = "Judged by the rules"

# Where each kind of record's admin page is, and who may open it.
VIEW_GYM = "coaching.view_gym"
VIEW_MEMBER = "coaching.view_member"
VIEW_EVENT = "coaching.view_event"
VIEW_ADVICE = "coaching.view_advice"
VIEW_RULE = "rules.view_rule"
# How the gym's app shows the card (CDS Hooks indicator), in words.
INDICATOR_WORDS = {"info": "information", "warning": "warning", "critical": "critical"}


# -- small building blocks --------------------------------------------------------------------
def _link(url: str | None, text: str) -> SafeString:
    return format_html('<a href="{}">{}</a>', url, text) if url else format_html("{}", text)


def _lines(rows: Iterable[tuple[str, str]], css: str = "coaching-values") -> SafeString:
    """Labelled values as a list: "Cleared by a physician: yes"."""
    items = format_html_join("", "<li>{}: {}</li>", rows)
    return format_html('<ul class="{}">{}</ul>', css, items) if items else format_html("{}", words.NOTHING)


def _names(members: list[Member]) -> str:
    return ", ".join(member.external_id for member in members)


def member_url(member_id: int | str) -> str:
    return reverse("admin:coaching_member_change", args=[member_id])


def event_url(event_id: int | str) -> str:
    return reverse("admin:coaching_event_change", args=[event_id])


def advice_url(advice_id: int | str) -> str:
    return reverse("admin:coaching_advice_change", args=[advice_id])


def event_when(event: Event) -> str:
    """When the event happened, in the member's own local time with its offset."""
    return words.local_moment(event.occurred_at, event.utc_offset_minutes)


def event_in_words(event: Event) -> str:
    return words.event_sentence(event.type, event.data)


def referral_since_words(member: Member) -> str:
    """When the member's referral began: the referring event's moment, in the member's local time."""
    event = member.referral_event
    return event_when(event) if event is not None else words.moment(member.referral_since)


def _referral_kinds() -> str:
    urgent = SEVERITIES[: SEVERITY_CODES.index(REFERRAL_FLOOR) + 1]
    return " and ".join(f"“{label}”" for _code, label in urgent)


def _markdown_plain(text: str) -> str:
    """The card's detail as read, without the markdown's asterisks."""
    return re.sub(r"\*{1,2}([^*]+)\*{1,2}", r"\1", text or "")


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ViewableLinksMixin:
    """Fields and columns that link to another admin page are swapped for their plain-text twin
    (the same name with ``_text``) when the user may not open that page, so no link leads to a
    "403 Forbidden". ``link_permissions`` maps each such name to the permission it needs."""

    link_permissions: dict[str, str] = {}

    def _viewable(self, request: HttpRequest, names: Sequence[str]) -> list[str]:
        return [
            f"{name}_text"
            if name in self.link_permissions and not request.user.has_perm(self.link_permissions[name])
            else name
            for name in names
        ]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return self._viewable(request, super().get_fields(request, obj))  # type: ignore[misc]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return self._viewable(request, super().get_readonly_fields(request, obj))  # type: ignore[misc]

    def get_list_display(self, request: HttpRequest) -> list[str]:
        return self._viewable(request, super().get_list_display(request))  # type: ignore[misc]

    @admin.display(description="Gym", ordering="gym__name")
    def gym_text(self, obj: Any) -> str:
        return obj.gym.name


class CoachingAdmin(ActionPermissionMixin, ViewableLinksMixin, ReadOnlyMixin, admin.ModelAdmin):
    """The shared wording of the members', events' and advice pages."""

    link_permissions = {"gym": VIEW_GYM, "member_link": VIEW_MEMBER, "event_link": VIEW_EVENT}

    @admin.display(description="Member", ordering="member__external_id")
    def member_link(self, obj: Event | Advice) -> SafeString:
        return _link(member_url(obj.member_id), obj.member.external_id)

    @admin.display(description="Member", ordering="member__external_id")
    def member_link_text(self, obj: Event | Advice) -> str:
        return obj.member.external_id


class GymKeyInline(admin.TabularInline):
    """A gym's API keys: name, scopes, last use; never the key itself (only its start)."""

    model = GymKey
    extra = 0
    can_delete = False
    fields = ["name", "key_prefix", "scopes_words", "created", "last_used", "state"]
    readonly_fields = fields
    verbose_name_plural = "API keys"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Scopes")
    def scopes_words(self, key: GymKey) -> str:
        return ", ".join(key.scopes)

    @admin.display(description="Created")
    def created(self, key: GymKey) -> str:
        return words.moment(key.created_at)

    @admin.display(description="Last used")
    def last_used(self, key: GymKey) -> str:
        return words.moment(key.last_used_at) if key.last_used_at else "never"

    @admin.display(description="State")
    def state(self, key: GymKey) -> str:
        if key.revoked_at is not None:
            return f"revoked {words.moment(key.revoked_at)}"
        if key.expires_at is not None:
            if key.expires_at <= timezone.now():
                return f"stopped working {words.moment(key.expires_at)} (replaced)"
            return f"works until {words.moment(key.expires_at)} (replaced)"
        return "works"


class GymKeyForm(forms.Form):
    name = forms.CharField(max_length=100, initial="default", help_text="To tell the gym's keys apart.")
    scopes = forms.MultipleChoiceField(
        choices=[(scope, f"{scope}: {what}") for scope, what in SCOPES.items()],
        widget=forms.CheckboxSelectMultiple,
        initial=list(SCOPES),
    )


@admin.register(Gym)
class GymAdmin(ActionPermissionMixin, admin.ModelAdmin):
    list_display = ["name", "keys_count", "created"]
    search_fields = ["name"]
    readonly_fields = ["created"]
    fields = ["name", "created"]
    inlines = [GymKeyInline]
    actions = ["rotate_key"]

    def get_inlines(self, request: HttpRequest, obj: Gym | None) -> list:
        return self.inlines if obj is not None else []  # a new gym's first key is made with it

    @admin.display(description="Created", ordering="created_at")
    def created(self, gym: Gym) -> str:
        return words.moment(gym.created_at)

    @admin.display(description="API keys in use")
    def keys_count(self, gym: Gym) -> int:
        now = timezone.now()
        return sum(
            1 for key in gym.keys.all() if key.revoked_at is None and (key.expires_at is None or key.expires_at > now)
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Gym]:
        return super().get_queryset(request).prefetch_related("keys")

    def get_urls(self) -> list:
        custom = [
            path("<int:gym_id>/keys/add/", self.admin_site.admin_view(self.key_add_view), name="coaching_gym_key_add"),
            path(
                "<int:gym_id>/keys/<int:key_id>/revoke/",
                self.admin_site.admin_view(self.key_revoke_view),
                name="coaching_gym_key_revoke",
            ),
        ]
        return custom + super().get_urls()

    def key_add_view(self, request: HttpRequest, gym_id: int) -> HttpResponse:
        """A new key with the scopes chosen; shown once in the message."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        gym = get_object_or_404(Gym, pk=gym_id)
        form = GymKeyForm(request.POST or None)
        if (
            request.method == "POST"
            and form.is_valid()
            and services.gym_key_name_in_use(gym=gym, name=form.cleaned_data["name"])
        ):
            form.add_error("name", KEY_NAME_IN_USE.format(name=form.cleaned_data["name"]))
        if request.method == "POST" and form.is_valid():
            _key, secret = services.gym_key_create(
                gym=gym, name=form.cleaned_data["name"], scopes=list(form.cleaned_data["scopes"])
            )
            messages.warning(request, KEY_SHOWN_ONCE.format(gym=gym.name, key=secret))
            return HttpResponseRedirect(reverse("admin:coaching_gym_change", args=[gym.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"A new API key for {gym.name}",
            "form": form,
            "gym": gym,
            "opts": self.opts,
        }
        return TemplateResponse(request, "admin/coaching/gym/key_add.html", context)

    def key_revoke_view(self, request: HttpRequest, gym_id: int, key_id: int) -> HttpResponse:
        if not self.has_change_permission(request) or request.method != "POST":
            raise PermissionDenied
        key = get_object_or_404(GymKey, pk=key_id, gym_id=gym_id)
        services.gym_key_revoke(key=key)
        messages.success(request, KEY_REVOKED.format(name=key.name, gym=key.gym.name))
        return HttpResponseRedirect(reverse("admin:coaching_gym_change", args=[gym_id]))

    def _import_url(self, request: HttpRequest, gym: Gym | None = None) -> str:
        if not request.user.has_perm(IMPORT_EVENTS):
            return ""
        url = reverse("admin:coaching_eventimport_add")
        return f"{url}?gym={gym.pk}" if gym is not None else url

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        context = {"import_events_url": self._import_url(request), **(extra_context or {})}
        return super().changelist_view(request, context)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        gym = self.get_object(request, unquote(object_id))
        keys = list(gym.keys.filter(revoked_at__isnull=True)) if gym else []
        context = {
            "import_events_url": self._import_url(request, gym) if gym else "",
            "key_add_url": reverse("admin:coaching_gym_key_add", args=[gym.pk]) if gym else "",
            "revocable_keys": [(key, reverse("admin:coaching_gym_key_revoke", args=[gym.pk, key.pk])) for key in keys],
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, context)

    def save_model(self, request: HttpRequest, obj: Gym, form: Any, change: bool) -> None:
        if change:
            obj.save(update_fields=["name"])
            return
        gym, key = services.gym_create(name=obj.name)
        obj.pk, obj.created_at = gym.pk, gym.created_at
        obj._state.adding = False
        obj._state.db = gym._state.db
        messages.warning(request, KEY_SHOWN_ONCE.format(gym=gym.name, key=key))

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        if change:
            super().save_related(request, form, formsets, change)

    @admin.action(description="Issue a new API key (the old one stops working)", permissions=["change"])
    def rotate_key(self, request: HttpRequest, queryset: QuerySet[Gym]) -> None:
        for gym in queryset:
            key = services.gym_key_rotate(gym=gym)
            messages.warning(request, KEY_SHOWN_ONCE.format(gym=gym.name, key=key))


# -- members: the timeline ---------------------------------------------------------------------
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
class MemberAdmin(CoachingAdmin):
    """The member list, and each member's page: profile, referral and timeline."""

    list_display = ["external_id_words", "gym", "under_referral", "events_count", "first_seen"]
    list_filter = [UnderReferralFilter, "gym"]
    search_fields = ["external_id"]
    list_select_related = ["gym"]
    fields = ["external_id_words", "gym", "referral", "profile_in_words", "first_seen"]
    readonly_fields = fields
    actions = ["mark_cleared"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Member]:
        first = Event.objects.filter(member=OuterRef("pk")).order_by("occurred_at", "external_id")
        return (
            super()
            .get_queryset(request)
            .select_related("gym", "referral_event")
            .annotate(
                event_count=Count("events"),
                first_event_at=Subquery(first.values("occurred_at")[:1]),
                first_event_offset=Subquery(first.values("utc_offset_minutes")[:1]),
            )
        )

    @admin.display(description="Member id at the gym", ordering="external_id")
    def external_id_words(self, member: Member) -> str:
        return member.external_id

    @admin.display(description="Under referral", ordering="referral_since")
    def under_referral(self, member: Member) -> str:
        if member.referral_since is None:
            return words.NOTHING
        return REFERRAL_COLUMN.format(since=referral_since_words(member), rule=member.referral_rule_name)

    @admin.display(description="Events", ordering="event_count")
    def events_count(self, member: Member) -> str:
        return words.count_words(member.event_count, "event")

    @admin.display(description="First event", ordering="first_event_at")
    def first_seen(self, member: Member) -> str:
        if member.first_event_at is None:
            return words.NOTHING
        return words.local_moment(member.first_event_at, member.first_event_offset or 0)

    @admin.display(description="Profile")
    def profile_in_words(self, member: Member) -> SafeString | str:
        # The physician's clearance is told with the referral, in one sentence.
        profile = {name: value for name, value in (member.profile or {}).items() if name != "cleared_by_physician"}
        rows = words.profile_values(profile)
        return _lines(rows) if rows else PROFILE_EMPTY

    @admin.display(description="Referral and clearance")
    def referral(self, member: Member) -> str:
        cleared = selectors.referral_clearance_last(member=member)
        by = f" (recorded by {cleared.recorded_by})" if cleared is not None and cleared.recorded_by else ""
        if member.referral_since is None:
            if cleared is None:
                return REFERRAL_NONE
            return f"{REFERRAL_NONE} {REFERRAL_LAST_CLEARED.format(at=event_when(cleared), by=by)}"
        event = member.referral_event
        fired_on = REFERRAL_FIRED_ON.format(what=words.event_type_words(event.type).lower()) if event else ""
        in_words = REFERRAL_IN_WORDS.format(
            since=referral_since_words(member),
            rule=member.referral_rule_name,
            fired_on=fired_on,
            cleared=REFERRAL_CLEARED_BEFORE.format(at=event_when(cleared), by=by) if cleared else REFERRAL_NOT_CLEARED,
        )
        if event is None:
            return in_words
        return format_html('{} <a href="{}">Show the event</a>', in_words, event_url(event.pk))

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
        change_url = member_url(member.pk)
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

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        member = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if member is not None and self.has_view_permission(request, member):
            context.update(self._timeline_context(request, member))
        return super().change_view(request, object_id, form_url, context)

    def _timeline_context(self, request: HttpRequest, member: Member) -> dict[str, Any]:
        page = request.GET.get("page") or (
            selectors.member_timeline_page_of(member=member, event_id=request.GET["event"])
            if request.GET.get("event")
            else 1
        )
        timeline = selectors.member_timeline(member=member, page=page)
        simulation_id = request.GET.get("simulation", "")
        simulated = simulation_subject_events(simulation_id, str(member.pk)) if simulation_id else {}
        may_view_events = request.user.has_perm(VIEW_EVENT)
        may_view_advice = request.user.has_perm(VIEW_ADVICE)
        held = None
        show_held = request.GET.get("held") == "1"
        if show_held:
            try:
                held = selectors.member_held_back(member=member)
            except Exception as exc:  # the engine failed: say so on the page, keep the timeline
                logger.exception("Judging member %s again for the timeline failed", member.pk)
                messages.error(request, TIMELINE_HELD_FAILED.format(error=f"{type(exc).__name__}: {exc}"))
        entries = [
            self._entry_words(entry, events_linked=may_view_events, advice_linked=may_view_advice, held=held)
            for entry in timeline.object_list
        ]
        may_try = request.user.has_perm(VIEW_RULE)
        for entry, found in zip(entries, timeline.object_list, strict=True):
            event = found.event
            entry["try_url"] = (
                try_url(
                    fact_type=event.type,
                    data=event.data,
                    occurred_at=event.occurred_at_local,
                    subject=str(member.pk),
                    fact_id=str(event.pk),
                )
                if may_try
                else None
            )
        # A referral in force over several events is told in full once, at the oldest of them here.
        told: set[str] = set()
        for entry in reversed(entries):
            entry["under_referral"] = bool(entry["referral"])
            if entry["referral"] in told:
                entry["referral"] = ""
            told.add(entry["referral"])
        for entry in entries:
            found = simulated.get(str(entry["pk"]))
            entry["simulated"] = _simulated_words(found) if found else None
            entry["target"] = str(entry["pk"]) == request.GET.get("event")
        return {
            "show_held": show_held,
            "held_version": held.version if held else None,
            "title": f"Member {member.external_id}",
            "subtitle": f"{member.gym.name} · {words.count_words(timeline.paginator.count, 'event')}",
            "timeline": timeline,
            "timeline_entries": entries,
            "referral_started": TIMELINE_STARTED_REFERRAL,
            "no_advice": TIMELINE_NO_ADVICE,
            "simulation_id": simulation_id if simulated else "",
            "simulation_url": f"{reverse('admin:rules_rule_simulate')}?job={simulation_id}" if simulated else "",
            "simulation_note": TIMELINE_SIMULATION if simulated else "",
        }

    def _entry_words(
        self,
        entry: selectors.TimelineEntry,
        *,
        events_linked: bool,
        advice_linked: bool,
        held: selectors.HeldBackNow | None,
    ) -> dict:
        event = entry.event
        referral = ""
        if entry.referral is not None:
            referral = TIMELINE_REFERRAL.format(
                since=event_when(entry.referral.event), rule=entry.referral.rule_name, kinds=_referral_kinds()
            )
        advice = []
        for piece in entry.advice:
            withdrawn_by = piece.withdrawn_by
            advice.append(
                {
                    "severity": words.severity_words(piece.severity),
                    "severity_code": piece.severity,
                    "rule_name": piece.rule_name,
                    "message": piece.message,
                    "url": advice_url(piece.pk) if advice_linked else None,
                    "refers": piece.refers and piece.withdrawn_at is None,
                    "withdrawn": piece.withdrawn_at is not None,
                    "withdrawn_at": TIMELINE_WITHDRAWN.format(at=words.moment(piece.withdrawn_at)),
                    "withdrawn_by": words.lower_first(str(withdrawn_by)) if withdrawn_by else "",
                    "withdrawn_by_url": event_url(withdrawn_by.pk) if withdrawn_by and events_linked else None,
                    "withdrawn_reason": words.dates_in_words(piece.withdrawn_reason),
                }
            )
        return {
            "pk": event.pk,
            "external_id": event.external_id,
            "url": event_url(event.pk) if events_linked else None,
            "when": event_when(event),
            "sentence": event_in_words(event),
            "recorded_by": event.recorded_by,
            "not_judged": "" if event.evaluated else TIMELINE_NOT_JUDGED.format(error=event.evaluation_error or "…"),
            "referral": referral,
            "advice": advice,
            "held": [
                {
                    "severity": words.severity_words(h.match.severity),
                    "rule_name": h.match.rule_name,
                    "explanation": h.explanation,
                }
                for h in (held.by_event.get(event.pk, []) if held else [])
            ],
            "figures": words.figure_values(event.figures),
        }


def _simulated_words(event: Any) -> dict[str, Any]:
    """What a simulated draft gives on an event, beside what the event got, in words."""
    live = {advice.rule_key for advice in event.live}
    draft = {advice.rule_key for advice in event.draft}
    return {
        "changed": bool(event.kinds()),
        "advice": [
            {
                "severity": words.severity_words(advice.severity),
                "severity_code": advice.severity,
                "rule_name": advice.rule_name,
                "message": advice.message,
                "new": advice.rule_key not in live,
            }
            for advice in event.draft
        ],
        "gone": [advice.rule_name for advice in event.live if advice.rule_key not in draft],
    }


# -- events ------------------------------------------------------------------------------------
@admin.register(Event)
class EventAdmin(CoachingAdmin):
    list_display = ["when", "member_link", "in_words", "judged", "gym", "external_id_words"]
    list_display_links = ["when"]
    list_filter = ["type", "evaluated", "gym"]
    search_fields = ["external_id", "member__external_id"]
    list_select_related = ["member", "gym"]
    date_hierarchy = "occurred_at"
    fields = [
        "member_link",
        "gym",
        "external_id_words",
        "type",
        "when",
        "in_words",
        "recorded_values",
        "figures_seen",
        "evaluation",
        "source",
        "received",
        "advice_given",
    ]
    readonly_fields = fields
    link_permissions = {**CoachingAdmin.link_permissions, "advice_given": VIEW_ADVICE}
    actions = ["reevaluate"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Event]:
        return super().get_queryset(request).select_related("member", "gym")

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        event = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if event is not None:
            context.update(title=str(event), subtitle=f"Member {event.member.external_id}, {event.gym.name}")
        return super().change_view(request, object_id, form_url, context)

    @admin.display(description="Event id at the gym", ordering="external_id")
    def external_id_words(self, event: Event) -> str:
        return event.external_id

    @admin.display(description="When (their local time)", ordering="occurred_at")
    def when(self, event: Event) -> str:
        return event_when(event)

    @admin.display(description="What happened")
    def in_words(self, event: Event) -> str:
        return event_in_words(event)

    @admin.display(description="Judged", boolean=True, ordering="evaluated")
    def judged(self, event: Event) -> bool:
        return event.evaluated

    @admin.display(description="Received", ordering="received_at")
    def received(self, event: Event) -> str:
        return words.moment(event.received_at)

    @admin.display(description="Recorded values")
    def recorded_values(self, event: Event) -> SafeString:
        return _lines(words.data_values(event.type, event.data))

    @admin.display(description="Figures the rules saw")
    def figures_seen(self, event: Event) -> SafeString:
        return _lines(words.figure_values(event.figures))

    @admin.display(description="Evaluation")
    def evaluation(self, event: Event) -> str:
        return JUDGED if event.evaluated else TIMELINE_NOT_JUDGED.format(error=event.evaluation_error or "…")

    @admin.display(description="Recorded by")
    def source(self, event: Event) -> str:
        return RECORDED_IN_THE_ADMIN.format(name=event.recorded_by) if event.recorded_by else SENT_BY_THE_GYM

    @admin.display(description="Advice")
    def advice_given(self, event: Event) -> SafeString:
        return self._advice_of(event, linked=True)

    @admin.display(description="Advice")
    def advice_given_text(self, event: Event) -> SafeString:
        return self._advice_of(event, linked=False)

    def _advice_of(self, event: Event, *, linked: bool) -> SafeString:
        """The advice judging this event produced (withdrawn advice marked), and what its arrival withdrew."""
        produced = sorted(
            event.advice.all(), key=lambda a: (a.withdrawn_at is not None, SEVERITY_CODES.index(a.severity))
        )
        withdrew = list(event.withdrawals.select_related("event", "member"))
        rows = [_advice_line(a, linked=linked) for a in produced] or [format_html("{}", TIMELINE_NO_ADVICE)]
        rows += [
            format_html("Its arrival withdrew: {}", _link(advice_url(a.pk) if linked else None, str(a)))
            for a in withdrew
        ]
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((row,) for row in rows)))

    def has_reevaluate_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.reevaluate_event")

    @admin.action(description="Re-run evaluation (no duplicate advice)", permissions=["reevaluate"])
    def reevaluate(self, request: HttpRequest, queryset: QuerySet[Event]) -> None:
        earliest: dict[int, Event] = {}
        for event in queryset.select_related("member").order_by("occurred_at", "external_id"):
            earliest.setdefault(event.member_id, event)
        if len(earliest) > REEVALUATE_INLINE_MEMBERS:
            job = reevaluate_start({pk: event.occurred_at for pk, event in earliest.items()}, user=request.user)
            link = _link(reverse("admin:rules_job_change", args=[job.pk]), "its progress")
            messages.info(request, format_html(REEVALUATE_QUEUED, members=len(earliest), link=link))
            return
        judged = failed = 0
        for event in earliest.values():
            result = services.events_reevaluate(member=event.member, since=event.occurred_at)
            judged, failed = judged + result.events, failed + result.failed
        messages.info(request, REEVALUATED.format(events=words.count_words(judged, "event"), failed=failed))


def _advice_line(advice: Advice, *, linked: bool) -> SafeString:
    """ "Stop running for now — Stop when it hurts: “…”", marked when withdrawn."""
    line = format_html(
        "{} — {}: “{}”",
        words.severity_words(advice.severity),
        _link(advice_url(advice.pk) if linked else None, advice.rule_name),
        advice.message,
    )
    if advice.withdrawn_at is not None:
        line = format_html("<s>{}</s> ({})", line, TIMELINE_WITHDRAWN.format(at=words.moment(advice.withdrawn_at)))
    return line


# -- advice ------------------------------------------------------------------------------------
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


class _ChoiceFilter(admin.SimpleListFilter):
    """Filter on a coded field, offering the codes' words."""

    options: Sequence[tuple[str, str]] = ()

    def lookups(self, request: HttpRequest, model_admin: Any) -> Sequence[tuple[str, str]]:
        return self.options

    def queryset(self, request: HttpRequest, queryset: QuerySet[Advice]) -> QuerySet[Advice]:
        if self.value():
            return queryset.filter(**{self.parameter_name: self.value()})
        return queryset


class SeverityFilter(_ChoiceFilter):
    title = "severity"
    parameter_name = "severity"
    options = SEVERITIES


class CategoryFilter(_ChoiceFilter):
    title = "category"
    parameter_name = "category"
    options = CATEGORIES


class RuleFilter(_ChoiceFilter):
    title = "rule"
    parameter_name = "rule_key"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names = dict(Advice.objects.order_by("rule_name").values_list("rule_key", "rule_name").distinct())
        return sorted(names.items(), key=lambda item: item[1])


@admin.register(Advice)
class AdviceAdmin(CoachingAdmin):
    list_display = ["rule", "severity_words", "member_link", "event_link", "created", "withdrawn"]
    list_filter = [WithdrawnFilter, SeverityFilter, CategoryFilter, RuleFilter, "gym"]
    search_fields = ["rule_key", "rule_name", "member__external_id", "event__external_id", "message"]
    list_select_related = ["member", "event", "gym"]
    date_hierarchy = "created_at"
    fields = [
        "member_link",
        "event_link",
        "gym",
        "rule",
        "severity_words",
        "category_words",
        "message",
        "matched",
        "card_values",
        "refers_words",
        "trigger_link",
        "created",
        "status",
    ]
    readonly_fields = fields
    link_permissions = {
        **CoachingAdmin.link_permissions,
        "matched": VIEW_EVENT,
        "trigger_link": VIEW_EVENT,
        "status": VIEW_EVENT,
    }

    def get_queryset(self, request: HttpRequest) -> QuerySet[Advice]:
        return super().get_queryset(request).select_related("member", "event", "gym", "trigger", "withdrawn_by")

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        advice = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if advice is not None:
            context.update(title=str(advice), subtitle="")
        return super().change_view(request, object_id, form_url, context)

    @admin.display(description="Rule", ordering="rule_name")
    def rule(self, advice: Advice) -> str:
        return advice.rule_name

    @admin.display(description="Severity", ordering="severity")
    def severity_words(self, advice: Advice) -> str:
        return words.severity_words(advice.severity)

    @admin.display(description="Category", ordering="category")
    def category_words(self, advice: Advice) -> str:
        return words.category_words(advice.category)

    @admin.display(description="Event", ordering="occurred_at")
    def event_link(self, advice: Advice) -> SafeString:
        return _link(event_url(advice.event_id), str(advice.event))

    @admin.display(description="Event", ordering="occurred_at")
    def event_link_text(self, advice: Advice) -> str:
        return str(advice.event)

    @admin.display(description="Given", ordering="created_at")
    def created(self, advice: Advice) -> str:
        return words.moment(advice.created_at)

    @admin.display(description="Current or withdrawn", ordering="withdrawn_at")
    def withdrawn(self, advice: Advice) -> str:
        if advice.withdrawn_at is None:
            return "Current"
        reason = Truncator(words.dates_in_words(advice.withdrawn_reason)).chars(120)
        return WITHDRAWN_COLUMN.format(at=words.moment(advice.withdrawn_at), reason=reason)

    @admin.display(description="The events the rule matched")
    def matched(self, advice: Advice) -> SafeString:
        return self._matched(advice, linked=True)

    @admin.display(description="The events the rule matched")
    def matched_text(self, advice: Advice) -> SafeString:
        return self._matched(advice, linked=False)

    def _matched(self, advice: Advice, *, linked: bool) -> SafeString:
        ids = list(advice.matched_events or [])
        found = {e.external_id: e for e in Event.objects.filter(gym_id=advice.gym_id, external_id__in=ids)}
        rows = []
        for external_id in ids:
            event = found.get(external_id)
            if event is None:
                rows.append((format_html("{}", external_id), "no longer stored"))
            else:
                rows.append((_link(event_url(event.pk) if linked else None, event_when(event)), event_in_words(event)))
        return _lines(rows)

    @admin.display(description="As the gym's app receives it")
    def card_values(self, advice: Advice) -> SafeString:
        card = advice.card or {}
        indicator = card.get("indicator", "")
        rows = [
            ("Summary", card.get("summary") or words.NOTHING),
            ("Shown as", INDICATOR_WORDS.get(indicator, indicator) or words.NOTHING),
        ]
        detail = _markdown_plain(card.get("detail", ""))
        if not detail.startswith(advice.message):  # the usual detail is the message, rule name and source
            rows.append(("Detail", linebreaksbr(detail, autoescape=True)))
        rows.append(("Source", (card.get("source") or {}).get("label") or words.NOTHING))
        return _lines(rows)

    @admin.display(description="Put the member under referral")
    def refers_words(self, advice: Advice) -> str:
        return "yes" if advice.refers else "no"

    @admin.display(description="Judged again when this arrived")
    def trigger_link(self, advice: Advice) -> SafeString | str:
        trigger = advice.trigger
        return _link(event_url(trigger.pk), str(trigger)) if trigger else words.NOTHING

    @admin.display(description="Judged again when this arrived")
    def trigger_link_text(self, advice: Advice) -> str:
        return str(advice.trigger) if advice.trigger else words.NOTHING

    @admin.display(description="Current or withdrawn")
    def status(self, advice: Advice) -> SafeString | str:
        return self._status(advice, linked=True)

    @admin.display(description="Current or withdrawn")
    def status_text(self, advice: Advice) -> SafeString | str:
        return self._status(advice, linked=False)

    def _status(self, advice: Advice, *, linked: bool) -> SafeString | str:
        if advice.withdrawn_at is None:
            return "Current"
        by = advice.withdrawn_by
        when = TIMELINE_WITHDRAWN.format(at=words.moment(advice.withdrawn_at))
        reason = words.dates_in_words(advice.withdrawn_reason)
        if by is None:
            return format_html("{}: {}", when, reason)
        return format_html(
            "{}, when the {} arrived: {}",
            when,
            _link(event_url(by.pk) if linked else None, words.lower_first(str(by))),
            reason,
        )


# -- importing a history of events ---------------------------------------------------------------
IMPORT_EVENTS = "coaching.import_events"
IMPORT_QUEUED = "{file} is stored, and a worker imports it in the background: this page shows how far it got."
IMPORT_TOO_BIG = (
    "The file is {size} MB; files up to {limit} MB can be imported here. "
    "Split it, or import it on the server with the importevents command."
)
IMPORT_NOT_READ = "The file could not be read, so nothing was imported: {problem}"
IMPORT_STARTED_AGAIN = "The import was started again; lines imported before are recognised and not stored twice."
IMPORT_WAITING = "Waiting for a worker"
IMPORT_RUNNING = "Importing: line {done} of {total}"
IMPORT_FINISHED = "Finished"
IMPORT_STOPPED = "Stopped before the end (its worker stopped); start it again"
IMPORT_OUTCOME = "{created}, {repeated} already there, {bad} skipped"
IMPORT_MORE_BAD_LINES = "… and {more} more bad lines, not kept."
# The report page lists this many bad lines; all kept ones are in its download.
SHOWN_BAD_LINES = 1000


class EventImportForm(forms.Form):
    gym = forms.ModelChoiceField(queryset=Gym.objects.all(), help_text="The gym whose members the events are of.")
    file = forms.FileField(
        help_text=f"A CSV or JSON Lines file of up to {imports.MAX_UPLOAD_BYTES // 2**20} MB, in UTF-8."
    )
    format = forms.ChoiceField(
        required=False,
        choices=[("", "From the file's name (.csv, or .jsonl, .ndjson, .json)"), *imports.FORMAT_LABELS.items()],
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        upload = cleaned.get("file")
        if upload is None:
            return cleaned
        if upload.size > imports.MAX_UPLOAD_BYTES:
            mb = 2**20
            raise forms.ValidationError(
                IMPORT_TOO_BIG.format(size=round(upload.size / mb, 1), limit=imports.MAX_UPLOAD_BYTES // mb)
            )
        try:
            cleaned["format"] = cleaned.get("format") or imports.format_for(upload.name)
            imports.file_check(first_line=upload.readline(), format=cleaned["format"])
        except imports.ImportFileError as exc:
            raise forms.ValidationError(str(exc)) from None
        upload.seek(0)
        return cleaned


@admin.register(EventImport)
class EventImportAdmin(admin.ModelAdmin):
    """Uploads of a gym's history, each imported by a worker (``coaching.imports``), and their reports.

    Importing writes a gym's events in bulk, so it has its own permission
    (``coaching.import_events``), given to operators, not to the Clinicians group.
    """

    list_display = ["file_name", "gym", "state", "outcome", "uploaded_by", "uploaded"]
    list_filter = ["gym"]
    list_select_related = ["gym", "created_by", "job"]
    search_fields = ["file_name"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[EventImport]:
        return super().get_queryset(request).defer("content", "bad_lines")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(IMPORT_EVENTS)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(IMPORT_EVENTS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(IMPORT_EVENTS)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Status")
    def state(self, upload: EventImport) -> str:
        if upload.finished:
            return IMPORT_NOT_READ.format(problem=upload.problem) if upload.problem else IMPORT_FINISHED
        job = upload.job
        if job is None or job.finished:
            return IMPORT_STOPPED
        if job.status == Job.Status.RUNNING and job.total:
            return IMPORT_RUNNING.format(done=f"{job.done:,}", total=f"{job.total:,}")
        return IMPORT_WAITING

    @admin.display(description="Outcome")
    def outcome(self, upload: EventImport) -> str:
        if not upload.finished or upload.problem:
            return words.NOTHING
        return IMPORT_OUTCOME.format(
            created=words.count_words(upload.created, "new event"),
            repeated=upload.repeated,
            bad=words.count_words(upload.bad_count, "bad line"),
        )

    @admin.display(description="Uploaded by", ordering="created_by__username")
    def uploaded_by(self, upload: EventImport) -> str:
        user = upload.created_by
        return (user.get_full_name() or user.get_username()) if user else words.NOTHING

    @admin.display(description="Uploaded", ordering="created_at")
    def uploaded(self, upload: EventImport) -> str:
        return words.moment(upload.created_at)

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/bad-lines/", view(self.bad_lines_view), name="coaching_eventimport_bad_lines"),
            path("<path:object_id>/start-again/", view(self.start_again_view), name="coaching_eventimport_start_again"),
            *super().get_urls(),
        ]

    def _context(self, request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
        return {**self.admin_site.each_context(request), "opts": self.opts, "title": title, **extra}

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None) -> HttpResponse:
        """The upload: the file is stored and its import queued; the report page follows it."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = EventImportForm(request.POST or None, request.FILES or None, initial={"gym": request.GET.get("gym")})
        if request.method == "POST" and form.is_valid():
            upload = imports.event_import_start(
                gym=form.cleaned_data["gym"],
                name=form.cleaned_data["file"].name,
                content=form.cleaned_data["file"].read(),
                format=form.cleaned_data["format"],
                user=request.user,
            )
            messages.info(request, IMPORT_QUEUED.format(file=upload.file_name))
            return HttpResponseRedirect(reverse("admin:coaching_eventimport_change", args=[upload.pk]))
        context = self._context(request, "Import events", form=form, chunk=imports.CHUNK_SIZE)
        return TemplateResponse(request, "admin/coaching/eventimport/upload.html", context)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        """The import's progress while a worker runs it, then its report."""
        upload = self._upload(request, object_id)
        job = upload.job
        running = not upload.finished and job is not None and not job.finished
        context = self._context(
            request,
            f"Import of {upload.file_name} into {upload.gym.name}",
            upload=upload,
            state=self.state(upload),
            running=running,
            progress=(job.done, job.total) if running and job.total else None,
            uploaded_by=self.uploaded_by(upload),
            uploaded=self.uploaded(upload),
            size=f"{upload.size / 2**20:.1f} MB" if upload.size >= 2**20 else f"{upload.size:,} bytes",
            format_words=upload.get_format_display(),
            created=words.count_words(upload.created, "new event"),
            bad=words.count_words(upload.bad_count, "bad line"),
            # A CSV file's first line names its columns: it is no event.
            header_line=upload.format == EventImport.Format.CSV and upload.lines > 0,
            events_read=words.count_words(
                upload.lines - (1 if upload.format == EventImport.Format.CSV and upload.lines else 0), "line"
            )
            + " of events",
            bad_lines=upload.bad_lines[:SHOWN_BAD_LINES],
            more_shown=max(0, len(upload.bad_lines) - SHOWN_BAD_LINES),
            not_kept=IMPORT_MORE_BAD_LINES.format(more=upload.bad_count - len(upload.bad_lines))
            if upload.bad_count > len(upload.bad_lines)
            else "",
            may_start_again=not upload.finished and not running and self.has_add_permission(request),
        )
        return TemplateResponse(request, "admin/coaching/eventimport/report.html", context)

    def bad_lines_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Every kept bad line as plain text, one a line, as the command's report file has them."""
        upload = self._upload(request, object_id)
        text = "".join(f"line {line}: {reason}\n" for line, reason in upload.bad_lines)
        if upload.bad_count > len(upload.bad_lines):
            text += IMPORT_MORE_BAD_LINES.format(more=upload.bad_count - len(upload.bad_lines)) + "\n"
        response = HttpResponse(text, content_type="text/plain; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{upload.file_name}.errors.txt"'
        return response

    def start_again_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST" or not self.has_add_permission(request):
            raise PermissionDenied
        upload = self._upload(request, object_id)
        if not upload.finished and (upload.job is None or upload.job.finished):
            imports.event_import_restart(upload=upload, user=request.user)
            messages.info(request, IMPORT_STARTED_AGAIN)
        return HttpResponseRedirect(reverse("admin:coaching_eventimport_change", args=[upload.pk]))

    def _upload(self, request: HttpRequest, object_id: str) -> EventImport:
        if not self.has_view_permission(request):
            raise PermissionDenied
        upload = (
            EventImport.objects.select_related("gym", "job", "created_by")
            .defer("content")
            .filter(pk=unquote(object_id))
            .first()
            if object_id.isdigit()
            else None
        )
        if upload is None:
            raise Http404("This import does not exist (any more).")
        return upload


# Webhook endpoints and deliveries, override reasons: registered with the rest of the admin.
from . import admin_integrations  # noqa: E402, F401
