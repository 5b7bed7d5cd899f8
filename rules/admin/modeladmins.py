"""The clinicians' workspace: rules, versions and the audit trail in the Django admin.

The admin classes only wire pages to services: rule edits go through ``rule_save`` (with
the revision the editor loaded, so a concurrent save is refused), deletions through
``rule_delete``, and the custom pages live in ``rules.admin.views``.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join

from rules.admin import governance as governance_views
from rules.admin import landing as landing_views
from rules.admin import views as admin_views
from rules.admin.actions import ActionPermissionMixin
from rules.admin.audit import (
    STATUS_LABELS,
    change_diff,
    change_summary,
    diff_html,
    version_diff,
    versions_with_previous,
)
from rules.admin.describe import spec_describe
from rules.models import Job, PublishRequest, Rule, RuleChange, RulesetVersion
from rules.registry import registry
from rules.selectors import rule_review_due, rule_spec, rules_review_due_expression, rules_with_children
from rules.services import rule_delete, rule_set_enabled
from rules.simulation import SIMULATION_JOB
from rules.spec import EVIDENCE_LEVELS, MSG_SAFETY_DELETE, RuleValidationError


class CategoryFilter(admin.SimpleListFilter):
    title = "category"
    parameter_name = "category"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(c.code, c.label) for c in registry.categories()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(category=self.value()) if self.value() else queryset


class SeverityFilter(admin.SimpleListFilter):
    title = "severity"
    parameter_name = "severity"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(s.code, s.label) for s in registry.severities()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(severity=self.value()) if self.value() else queryset


def _sentences(rules: list[Rule]) -> list[tuple[str, str, str]]:
    """(name, key, the rule in a sentence) of each rule, for the delete confirmations."""
    return [(rule.name, rule.key, spec_describe(rule_spec(rule))) for rule in rules]


class EvidenceFilter(admin.SimpleListFilter):
    title = "evidence"
    parameter_name = "evidence"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(EVIDENCE_LEVELS.items())

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(evidence_level=self.value()) if self.value() else queryset


REVIEW_SOON_DAYS = 30


class ReviewFilter(admin.SimpleListFilter):
    title = "review"
    parameter_name = "review"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("past", "Past its review date"),
            ("soon", f"Due within {REVIEW_SOON_DAYS} days"),
            ("later", "Due later"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        today = timezone.localdate()
        soon = today + dt.timedelta(days=REVIEW_SOON_DAYS)
        if self.value() == "past":
            return queryset.filter(review_due__lt=today)
        if self.value() == "soon":
            return queryset.filter(review_due__gte=today, review_due__lte=soon)
        if self.value() == "later":
            return queryset.filter(review_due__gt=soon)
        return queryset


@admin.register(Rule)
class RuleAdmin(ActionPermissionMixin, admin.ModelAdmin):
    list_display = (
        "name_and_key",
        "severity_label",
        "category_label",
        "evidence",
        "review",
        "status",
        "last_change",
    )
    list_display_links = ("name_and_key",)
    list_filter = (CategoryFilter, SeverityFilter, "enabled", EvidenceFilter, ReviewFilter)
    ordering = ("name",)
    search_fields = ("key", "name", "description", "message")
    list_select_related = ("updated_by",)
    actions = ("enable_rules", "disable_rules", "delete_selected")
    change_list_template = "admin/rules/rule/change_list.html"
    delete_confirmation_template = "admin/rules/rule/delete_confirmation.html"
    delete_selected_confirmation_template = "admin/rules/rule/delete_selected_confirmation.html"
    list_per_page = 100
    _request_state = threading.local()

    # -- list ------------------------------------------------------------------------------
    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        state = admin_views.draft_state()
        self._request_state.statuses = state.statuses
        extra = {
            "live": state.live,
            "draft_diff": state.diff,
            "requests_waiting": PublishRequest.objects.filter(status=PublishRequest.Status.PENDING).count(),
            **admin_views.may(request),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=extra)

    @admin.display(description="rule", ordering="name")
    def name_and_key(self, rule: Rule) -> str:
        tag = (
            format_html(' <span class="rule-status rule-status-safety">{}</span>', "safety-critical")
            if rule.key in registry.safety_critical()
            else ""
        )
        return format_html('{} <span class="rules-key">{}</span>{}', rule.name, rule.key, tag)

    @admin.display(description="evidence", ordering="evidence_level")
    def evidence(self, rule: Rule) -> str:
        return EVIDENCE_LEVELS.get(rule.evidence_level, rule.evidence_level)

    @admin.display(description="review by", ordering="review_due")
    def review(self, rule: Rule) -> str:
        due = rule_review_due(rule)
        shown = date_format(due, "DATE_FORMAT")
        if due < timezone.localdate():
            return format_html('<span class="rules-overdue">{} (past)</span>', shown)
        return shown

    @admin.display(description="category", ordering="category")
    def category_label(self, rule: Rule) -> str:
        return registry.category_label(rule.category)

    @admin.display(description="severity", ordering="severity")
    def severity_label(self, rule: Rule) -> str:
        return registry.severity_label(rule.severity)

    @admin.display(description="state")
    def status(self, rule: Rule) -> str:
        status = getattr(self._request_state, "statuses", {}).get(rule.key, "")
        shown = format_html('<span class="rule-status rule-status-{}">{}</span>', status, STATUS_LABELS.get(status, ""))
        if not rule.enabled:
            shown = format_html('{} <span class="rule-status rule-status-off">{}</span>', shown, "switched off")
        return shown

    @admin.display(description="last change", ordering="updated_at")
    def last_change(self, rule: Rule) -> str:
        when = date_format(timezone.localtime(rule.updated_at), "DATE_FORMAT")
        if rule.updated_by is None:
            return when
        return format_html('{}<br><span class="rules-by">by {}</span>', when, person(rule.updated_by))

    @admin.action(description="Enable the selected rules (in the draft)", permissions=["change"])
    def enable_rules(self, request: HttpRequest, queryset: QuerySet[Rule]) -> None:
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable the selected rules (in the draft)", permissions=["change"])
    def disable_rules(self, request: HttpRequest, queryset: QuerySet[Rule]) -> None:
        self._set_enabled(request, queryset, False)

    def _set_enabled(self, request: HttpRequest, queryset: QuerySet[Rule], enabled: bool) -> None:
        changed = 0
        for rule in queryset.prefetch_related("steps", "conditions", "parameters"):
            if rule.enabled != enabled:
                try:
                    rule_set_enabled(rule=rule, enabled=enabled, user=request.user)
                except RuleValidationError as exc:  # a safety-critical rule stays on: say why
                    for text in exc.errors.get("enabled", []):
                        messages.error(request, text)
                    continue
                changed += 1
        rules = "1 rule" if changed == 1 else f"{changed} rules"
        messages.success(
            request,
            f"{rules} {'enabled' if enabled else 'disabled'} in the draft. Publish the draft to make it live.",
        )

    # -- editor, deletion --------------------------------------------------------------------
    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None) -> HttpResponse:
        return admin_views.rule_editor(self, request, None)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        rule = self.get_object(request, object_id)
        if rule is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        return admin_views.rule_editor(self, request, rule)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Rule]:
        return rules_with_children().select_related("updated_by").annotate(review_due=rules_review_due_expression())

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: dict | None = None) -> HttpResponse:
        rule = self.get_object(request, object_id)
        refused = self._safety_refusals(request, [rule] if rule else [])
        if refused:
            return HttpResponseRedirect(reverse("admin:rules_rule_change", args=[rule.pk]))
        note = {"draft_note": admin_views.deletion_note([rule]), "rule_sentences": _sentences([rule])} if rule else {}
        return super().delete_view(request, object_id, extra_context={**note, **(extra_context or {})})

    @admin.action(description="Delete the selected rules (from the draft)", permissions=["delete"])
    def delete_selected(self, request: HttpRequest, queryset: QuerySet[Rule]) -> HttpResponse | None:
        """Django's own deletion action; its confirmation says that only the draft changes. A
        selection with a safety-critical rule is refused, naming it."""
        if self._safety_refusals(request, list(queryset)):
            return None
        response = django_delete_selected(self, request, queryset)
        if isinstance(response, TemplateResponse):
            rules = list(queryset.prefetch_related("steps", "conditions", "parameters").order_by("name"))
            response.context_data["draft_note"] = admin_views.deletion_note(rules)
            response.context_data["rule_sentences"] = _sentences(rules)
        return response

    def _safety_refusals(self, request: HttpRequest, rules: list[Rule]) -> bool:
        """Tell the clinician why the safety-critical ones among ``rules`` cannot be deleted."""
        critical = registry.safety_critical()
        refused = [rule for rule in rules if rule.key in critical]
        for rule in refused:
            messages.error(request, MSG_SAFETY_DELETE.format(name=rule.name))
        return bool(refused)

    def delete_model(self, request: HttpRequest, obj: Rule) -> None:
        rule_delete(rule=obj, user=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Rule]) -> None:
        for rule in queryset:
            rule_delete(rule=rule, user=request.user)

    # -- custom pages --------------------------------------------------------------------------
    def get_urls(self) -> list:
        def wrap(view: Any) -> Any:
            def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
                return view(self, request, *args, **kwargs)

            return self.admin_site.admin_view(wrapper)

        custom = [
            path("describe/", wrap(admin_views.rule_describe), name="rules_rule_describe"),
            path("try/", wrap(admin_views.rule_try), name="rules_rule_try"),
            path("<int:rule_id>/try/", wrap(admin_views.rule_try), name="rules_rule_try_one"),
            path("simulate/", wrap(governance_views.ruleset_simulate), name="rules_rule_simulate"),
            path(
                "simulate/status/<str:job_id>/", wrap(admin_views.simulation_status), name="rules_rule_simulate_status"
            ),
            path("settings/", wrap(admin_views.ruleset_settings_view), name="rules_rule_settings"),
            path("publish/", wrap(governance_views.ruleset_publish_view), name="rules_rule_publish"),
            path("reevaluate/", wrap(admin_views.ruleset_reevaluate_view), name="rules_rule_reevaluate"),
            path("rollback/", wrap(governance_views.ruleset_rollback_view), name="rules_rule_rollback"),
            path("discard/", wrap(admin_views.draft_discard_view), name="rules_rule_discard"),
            path("export/", wrap(admin_views.pack_export_view), name="rules_rule_export"),
            path("import/", wrap(admin_views.pack_import_view), name="rules_rule_import"),
            path("statistics/", wrap(landing_views.statistics_view), name="rules_rule_statistics"),
            path("statistics/<slug:key>/", wrap(landing_views.rule_landing_view), name="rules_rule_landing"),
        ]
        return custom + super().get_urls()


class ReadOnlyAdmin(ActionPermissionMixin, admin.ModelAdmin):
    """Versions and audit records are written by the services only, never edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def person(user: Any) -> str:
    """A clinician as the admin names them (never a link: the user pages are the operators')."""
    if user is None:
        return "—"
    return user.get_full_name() or user.get_username()


@admin.register(RulesetVersion)
class RulesetVersionAdmin(ReadOnlyAdmin):
    list_display = (
        "number",
        "live_marker",
        "published",
        "published_by",
        "comment",
        "brought_back",
        "changes_summary",
    )
    list_select_related = ("created_by",)
    search_fields = ("comment",)
    fields = ("number", "published", "published_by", "how", "comment", "brought_back", "changes", "rule_sentences")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[RulesetVersion]:
        return versions_with_previous(super().get_queryset(request))

    @admin.display(description="")
    def live_marker(self, version: RulesetVersion) -> str:
        return (
            format_html('<span class="rule-status rule-status-live">{}</span>', "live")
            if version.number == version.live_number
            else ""
        )

    @admin.display(description="published", ordering="created_at")
    def published(self, version: RulesetVersion) -> str:
        return date_format(timezone.localtime(version.created_at), "DATETIME_FORMAT")

    @admin.display(description="published by", ordering="created_by__username")
    def published_by(self, version: RulesetVersion) -> str:
        return person(version.created_by)

    @admin.display(description="brings back")
    def brought_back(self, version: RulesetVersion) -> str:
        return f"version {version.rolled_back_from}" if version.rolled_back_from else "—"

    @admin.display(description="how it went live")
    def how(self, version: RulesetVersion) -> str:
        publish_request = PublishRequest.objects.filter(version=version).select_related("requested_by").first()
        if publish_request is not None:
            return render_to_string(
                "admin/rules/_request_record.html",
                {**governance_views.request_record(publish_request), "on_version_page": True},
            )
        return VERSION_ORIGIN_WORDS.get(version.origin, VERSION_ORIGIN_WORDS[""])

    @admin.display(description="changes against the version before")
    def changes_summary(self, version: RulesetVersion) -> str:
        return version_diff(version).summary()

    @admin.display(description="changes against the version before")
    def changes(self, version: RulesetVersion) -> str:
        return diff_html(version_diff(version))

    @admin.display(description="rules in this version")
    def rule_sentences(self, version: RulesetVersion) -> str:
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                '<li><b>{}</b> <span class="rules-key">{}</span>: {}</li>',
                ((spec["name"], spec["key"], spec_describe(spec)) for spec in version.snapshot),
            ),
        )


# How a version without a request went live, in words.
VERSION_ORIGIN_WORDS = {
    RulesetVersion.Origin.OPERATOR: "Published at once by an operator's command (a rule pack imported with its "
    "comment), without a clinician's approval; the change log records the import.",
    RulesetVersion.Origin.INSTALL: "Published when the default rule pack was first installed.",
    RulesetVersion.Origin.APPROVED: "Published through a request another clinician approved.",
    "": "Published directly, before requests and approvals were recorded (or by a program of the practice's own).",
}


@admin.register(PublishRequest)
class PublishRequestAdmin(ReadOnlyAdmin):
    """Requests to publish or roll back: every clinician reads them; another one approves them on
    the request's page (``rules.admin.governance.request_view``)."""

    list_display = ("what", "state", "asked_by", "asked", "version_link")
    list_filter = ("status", "kind")
    list_select_related = ("requested_by", "version")

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(admin_views.PERM_VIEW)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(admin_views.PERM_VIEW)

    @admin.display(description="request", ordering="requested_at")
    def what(self, publish_request: PublishRequest) -> str:
        return str(publish_request)

    @admin.display(description="state", ordering="status")
    def state(self, publish_request: PublishRequest) -> str:
        return publish_request.get_status_display()

    @admin.display(description="asked by")
    def asked_by(self, publish_request: PublishRequest) -> str:
        return person(publish_request.requested_by)

    @admin.display(description="asked", ordering="requested_at")
    def asked(self, publish_request: PublishRequest) -> str:
        return date_format(timezone.localtime(publish_request.requested_at), "DATETIME_FORMAT")

    @admin.display(description="version")
    def version_link(self, publish_request: PublishRequest) -> str:
        version = publish_request.version
        if version is None:
            return "—"
        url = reverse("admin:rules_rulesetversion_change", args=[version.pk])
        return format_html('<a href="{}">version {}</a>', url, version.number)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        if not str(object_id).isdigit():
            raise Http404
        return governance_views.request_view(self, request, object_id)


ACTION_WORDS = {"created": "new rule", "changed": "changed", "deleted": "deleted", RuleChange.PUBLISHED: "published"}


@admin.register(RuleChange)
class RuleChangeAdmin(ReadOnlyAdmin):
    list_display = ("when", "rule", "what_was_done", "origin_label", "who", "summary")
    list_filter = ("action", "origin")
    search_fields = ("rule_key",)
    list_select_related = ("changed_by",)
    fields = (
        "rule",
        "what_was_done",
        "origin_label",
        "when",
        "who",
        "diff",
        "sentence_before",
        "sentence_after",
    )
    readonly_fields = fields

    @admin.display(description="when", ordering="changed_at")
    def when(self, change: RuleChange) -> str:
        return date_format(timezone.localtime(change.changed_at), "DATETIME_FORMAT")

    @admin.display(description="rule", ordering="rule_key")
    def rule(self, change: RuleChange) -> str:
        if change.is_publish:
            return "the whole ruleset"
        if change.is_settings:
            return "ruleset settings"
        name = (change.after or change.before or {}).get("name") or change.rule_key
        return format_html('{} <span class="rules-key">{}</span>', name, change.rule_key)

    @admin.display(description="action", ordering="action")
    def what_was_done(self, change: RuleChange) -> str:
        return ACTION_WORDS.get(change.action, change.action)

    @admin.display(description="origin", ordering="origin")
    def origin_label(self, change: RuleChange) -> str:
        return change.origin_label

    @admin.display(description="by", ordering="changed_by__username")
    def who(self, change: RuleChange) -> str:
        if change.changed_by is None and change.origin == RuleChange.Origin.OPERATOR:
            return "the operator"
        return person(change.changed_by)

    @admin.display(description="what changed")
    def summary(self, change: RuleChange) -> str:
        return change_summary(change, limit=300)  # the whole sentence and diff are on the change's page

    @admin.display(description="changes")
    def diff(self, change: RuleChange) -> str:
        return diff_html(change_diff(change))

    @admin.display(description="before")
    def sentence_before(self, change: RuleChange) -> str:
        return spec_describe(change.before) if change.before and not change.is_settings else "—"

    @admin.display(description="after")
    def sentence_after(self, change: RuleChange) -> str:
        return spec_describe(change.after) if change.after and not change.is_settings and not change.is_publish else "—"


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    """Work running on the task queue, with its progress, as any web process reads it."""

    list_display = ("title", "status_words", "progress", "started_by", "created_at", "finished_at")
    list_filter = ("status", "kind")
    list_select_related = ("created_by",)
    fields = (
        "title",
        "status_words",
        "progress",
        "parts_words",
        "started_by",
        "created_at",
        "started_at",
        "finished_at",
        "outcome",
    )
    readonly_fields = fields
    change_list_template = "admin/rules/job/change_list.html"

    def has_module_permission(self, request: HttpRequest) -> bool:
        """Operators find the queue on the index; a clinician reaches a job from the page that
        started it (a long simulation, a re-evaluation), never an unexplained list."""
        return request.user.is_superuser

    @admin.display(description="started by", ordering="created_by__username")
    def started_by(self, job: Job) -> str:
        return person(job.created_by)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Job]:
        # A job done in parts is listed once; its page says how each part goes.
        return super().get_queryset(request).filter(parent__isnull=True)

    @admin.display(description="parts")
    def parts_words(self, job: Job) -> str:
        parts = list(job.parts.order_by("part"))
        if not parts:
            return "one job"
        return "; ".join(
            f"part {p.part + 1}: {p.get_status_display()}" + (f", {p.done} of {p.total}" if p.total else "")
            for p in parts
        )

    @admin.display(description="status", ordering="status")
    def status_words(self, job: Job) -> str:
        return job.get_status_display()

    @admin.display(description="progress")
    def progress(self, job: Job) -> str:
        if job.status == Job.Status.QUEUED:
            return "not started"
        return f"{job.done} of {job.total}" if job.total else "—"

    @admin.display(description="outcome")
    def outcome(self, job: Job) -> str:
        if job.error:
            return job.error
        if job.kind == SIMULATION_JOB and job.status == Job.Status.DONE:
            url = f"{reverse('admin:rules_rule_simulate')}?job={job.pk}"
            return format_html('<a href="{}">Open the simulation’s result</a>', url)
        if isinstance(job.result, dict):
            return "; ".join(f"{name.replace('_', ' ')}: {value}" for name, value in job.result.items()) or "—"
        return "—"


# The queue's own records hold arguments and tracebacks for developers; people read ``Job``.
try:
    from django_tasks_db.models import DBTaskResult

    admin.site.unregister(DBTaskResult)
except (ImportError, admin.exceptions.NotRegistered):
    pass
