"""The clinician's custom admin pages: rule editor, sentence, try it, simulate, publish,
roll back, discard the draft, import/export and statistics.

Each view checks the rules models' permissions, calls one service or selector, and renders.
``RuleAdmin.get_urls`` wires them in (see rules/admin/modeladmins.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from rules import jobs, simulation
from rules.admin.audit import change_summary, diff_html, draft_state
from rules.admin.describe import message_example_segments, spec_describe
from rules.admin.forms import (
    PATTERN_HELP,
    ImportForm,
    RuleEditor,
    RulesetSettingsForm,
    SimulateForm,
    TryForm,
    catalog_json,
    key_from_name,
)
from rules.internal.render import with_unit
from rules.models import PublishRequest, Rule, RulesetVersion
from rules.packs import (
    PACK_MAX_BYTES,
    PackError,
    pack_dumps,
    pack_export,
    pack_import,
    pack_read,
    ruleset_diff,
    spec_diff,
)
from rules.registry import registry
from rules.selectors import (
    rule_changes,
    rule_key_taken,
    rule_review_due,
    rule_spec,
    rules_with_children,
    ruleset_draft_settings,
    ruleset_draft_specs,
    version_changed_fact_types,
    version_live,
)
from rules.services import (
    MSG_NOTHING_LIVE,
    MSG_NOTHING_TO_DISCARD,
    RuleConflictError,
    draft_discard,
    rule_save,
    ruleset_settings_save,
)
from rules.spec import SEQUENCE, SINGLE, SUMMARY_MAX, RuleValidationError, error_place, settings_normalize, value_text

PERM_VIEW = "rules.view_rule"
PERM_ADD = "rules.add_rule"
PERM_CHANGE = "rules.change_rule"
PERM_DELETE = "rules.delete_rule"
PERM_PUBLISH = "rules.add_rulesetversion"
PERM_EXPORT = "rules.view_rulesetversion"

MSG_SAVED = "“{name}” was saved to the draft. Publish the draft to make it live."
MSG_IMPORTED = "The rule pack is now the draft ({summary}). Simulate and publish it to make it live."
MSG_SETTINGS_SAVED = "The ruleset settings were saved to the draft. Publish the draft to make them live."
MSG_DISCARDED = "The draft was discarded: it equals live version {number} again."
# Discarding and importing create, change and delete draft rules, so they need all three
# permissions; rolling back also publishes.
PERMS_DISCARD = PERMS_IMPORT = (PERM_ADD, PERM_CHANGE, PERM_DELETE)
PERMS_ROLLBACK = (PERM_PUBLISH, *PERMS_DISCARD)
MSG_DELETE_LIVE = (
    "Deleting changes only the draft: {subjects} keep getting advice from {rules} until the draft is published."
)
MSG_DELETE_NOT_LIVE = "{rules} {verb} not live: deleting changes only the draft."


def _require(request: HttpRequest, *perms: str) -> None:
    if not request.user.has_perms(perms):
        raise PermissionDenied


def may(request: HttpRequest) -> dict[str, bool]:
    """Which writing pages the user may open: their links and buttons are shown only then."""
    user = request.user
    return {
        "can_publish": user.has_perm(PERM_PUBLISH),
        "can_roll_back": user.has_perms(PERMS_ROLLBACK),
        "can_change": user.has_perm(PERM_CHANGE),
        "can_import": user.has_perms(PERMS_IMPORT),
        "can_discard": user.has_perms(PERMS_DISCARD),
    }


def _context(model_admin: Any, request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
    state = draft_state()
    return {
        "requests_waiting": PublishRequest.objects.filter(status=PublishRequest.Status.PENDING).count(),
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": title,
        "live": state.live,
        "draft_diff": state.diff,
        **may(request),
        "subject": registry.subject()[0],
        "subjects": registry.subject()[1],
        **extra,
    }


def _render(request: HttpRequest, template: str, context: dict[str, Any]) -> TemplateResponse:
    return TemplateResponse(request, f"admin/rules/rule/{template}", context)


MSG_SAFETY_NOTE = (
    "Safety-critical: this rule cannot be switched off, deleted or made less urgent, and what it looks "
    "for is fixed. Its numbers and its wording can change."
)


def _changelist_url() -> str:
    return reverse("admin:rules_rule_changelist")


# -- editor -----------------------------------------------------------------------------------
def rule_editor(model_admin: Any, request: HttpRequest, rule: Rule | None) -> HttpResponse:
    """Add (rule None) or change a rule with widgets driven by the fact catalog."""
    _require(request, PERM_VIEW)
    if request.method == "POST":
        _require(request, PERM_CHANGE if rule else PERM_ADD)
        editor = RuleEditor(data=request.POST, fixed_key=rule.key if rule else None, key_taken=rule_key_taken)
        forms_valid = editor.is_valid()
        spec = editor.spec()
        if forms_valid:
            try:
                saved = rule_save(
                    spec=spec,
                    user=request.user,
                    rule=rule or Rule(),
                    expected_revision=editor.expected_revision if rule else None,
                )
            except RuleValidationError as exc:
                editor.add_spec_errors(exc.errors)
            except RuleConflictError as exc:
                editor.add_error(str(exc))
            else:
                messages.success(request, MSG_SAVED.format(name=saved.name))
                if "_continue" in request.POST:
                    return HttpResponseRedirect(reverse("admin:rules_rule_change", args=[saved.pk]))
                if "_try" in request.POST:
                    return HttpResponseRedirect(reverse("admin:rules_rule_try_one", args=[saved.pk]))
                return HttpResponseRedirect(_changelist_url())
    else:
        spec = rule_spec(rule) if rule else {}
        editor = RuleEditor(spec=spec, revision=rule.revision if rule else None, fixed_key=rule.key if rule else None)
    previews = message_previews(spec)
    changes = list(rule_changes(rule.key)[:8]) if rule else []
    title = f"Rule: {rule.name}" if rule else "New rule"
    return _render(
        request,
        "editor.html",
        _context(
            model_admin,
            request,
            title,
            rule=rule,
            editor=editor,
            sentence=spec_describe(spec),
            message_preview=previews["message_preview"],
            summary_preview=previews["summary_preview"],
            message_segments=previews["message_segments"],
            summary_segments=previews["summary_segments"],
            sequence=(spec.get("pattern") or SINGLE) == SEQUENCE,
            made_key=key_from_name(str(spec.get("name") or "")) if rule is None else "",
            pattern_help=PATTERN_HELP.get(spec.get("pattern") or SINGLE, "").format(subject=registry.subject()[0]),
            review_due=review_due_words(rule) if rule else "",
            review_overdue=bool(rule and rule_review_due(rule) < timezone.localdate()),
            catalog=catalog_json(),
            describe_url=reverse("admin:rules_rule_describe"),
            changes=[(c, spec_diff(c.before, c.after), change_summary(c)) for c in changes],
            has_errors=editor.has_errors,
            original=rule,
            add=rule is None,
            editable=request.user.has_perm(PERM_CHANGE if rule else PERM_ADD),
            summary_max=SUMMARY_MAX,
            advice_limit=ruleset_draft_settings()["advice_limit"],
            safety_note=MSG_SAFETY_NOTE,
        ),
    )


MSG_REVIEW_DUE = "Due for review on {day}{why}."
MSG_REVIEW_OVERDUE = "Past its review date: due on {day}{why}."


def review_due_words(rule: Rule) -> str:
    """When the rule is due for review, and why then."""
    due = rule_review_due(rule)
    why = "" if rule.review_by else ", a year after it last changed"
    template = MSG_REVIEW_OVERDUE if due < timezone.localdate() else MSG_REVIEW_DUE
    return template.format(day=date_format(due, "DATE_FORMAT"), why=why)


def rule_describe(model_admin: Any, request: HttpRequest) -> HttpResponse:
    """The sentence for the editor's unsaved form (called by the editor's script as you type)."""
    _require(request, PERM_VIEW)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    editor = RuleEditor(data=request.POST)
    editor.is_valid()
    spec = editor.spec()
    return JsonResponse({"sentence": spec_describe(spec), **message_previews(spec)})


def message_previews(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The message and the summary as a subject would read them after an example event (an empty
    summary shows the rule's name, as the advice does), as text and as (text, chip label) pieces."""
    summary = str(spec.get("summary") or "")
    message = message_example_segments(spec) or [("…", "")]
    summary_pieces = message_example_segments(spec, summary) if summary else [(str(spec.get("name") or "…"), "")]
    return {
        "message_preview": "".join(text for text, _ in message),
        "summary_preview": "".join(text for text, _ in summary_pieces),
        "message_segments": message,
        "summary_segments": summary_pieces,
    }


def deletion_note(rules: list[Rule]) -> str:
    """What deleting these rules does, for the delete confirmation: the draft changes at once,
    the advice the subjects get only when the draft is published."""
    live = version_live()
    live_keys = {spec["key"] for spec in live.snapshot} if live else set()
    reaching = [rule.name for rule in rules if rule.key in live_keys]
    if reaching:
        return MSG_DELETE_LIVE.format(subjects=registry.subject()[1], rules=_quoted(reaching))
    return MSG_DELETE_NOT_LIVE.format(
        rules=_quoted([rule.name for rule in rules]), verb="is" if len(rules) == 1 else "are"
    )


def _quoted(names: list[str]) -> str:
    quoted = [f"“{name}”" for name in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


# -- try it -----------------------------------------------------------------------------------
def rule_try(model_admin: Any, request: HttpRequest, rule_id: int | None = None) -> HttpResponse:
    """Enter an event (and optionally a real subject) and see which rules fire, draft and live."""
    _require(request, PERM_VIEW)
    rule = get_object_or_404(rules_with_children(), pk=rule_id) if rule_id else None
    source = registry.fact_source()
    if source is None:
        return _render(
            request, "unavailable.html", _context(model_admin, request, "Try it", reason=simulation.MSG_NO_FACT_SOURCE)
        )
    steps = list(rule.steps.all()) if rule else []
    fact_types = registry.fact_types()
    default_type = steps[-1].fact_type if steps else (fact_types[0].name if fact_types else "")
    fact_type = request.POST.get("fact_type") or request.GET.get("type") or default_type
    chosen = registry.fact_type(fact_type)
    if chosen is None:
        fact_type, chosen = default_type, registry.fact_type(default_type)
    subjects = source.subjects(search=request.GET.get("q", ""), limit=200)
    wanted = request.POST.get("subject") or request.GET.get("subject") or ""
    if wanted and wanted not in dict(subjects):  # a subject beyond the first ones listed, from its page
        subjects.append((wanted, source.subjects_words([wanted]).get(wanted, wanted)))
    result = None
    subject_link = None
    bound = request.method == "POST" and request.POST.get("fact_type") == request.POST.get("_shown_type")
    form = TryForm(
        request.POST if bound else None,
        fact_type=fact_type,
        subjects=subjects,
        rule_name=rule.name if rule else None,
        initial={"fact_type": fact_type, "scope": "rule", **try_initial(request.GET)},
    )
    if bound and form.is_valid():
        specs = None
        if rule and form.cleaned_data.get("scope", "rule") == "rule":
            specs = [{**rule_spec(rule), "enabled": True}]
        result = simulation.rule_try(
            fact_type=fact_type,
            data=form.event_data(),
            occurred_at=form.cleaned_data["occurred_at"],
            subject=form.cleaned_data.get("subject") or None,
            specs=specs,
            replacing=form.cleaned_data.get("replacing") or None,
        )
        chosen_subject = form.cleaned_data.get("subject")
        if chosen_subject:
            subject_link = (dict(subjects).get(chosen_subject, chosen_subject), source.subject_url(chosen_subject))
    fact_fields = chosen.fields if chosen else {}
    title = f"Try “{rule.name}”" if rule else "Try the draft"
    return _render(
        request,
        "try.html",
        _context(
            model_admin,
            request,
            title,
            rule=rule,
            form=form,
            result=result,
            fact_type=fact_type,
            subject_link=subject_link,
            keep_query=[(name, value) for name, value in request.GET.items() if name in ("subject", "at")],
            fact_rows=_fact_rows(result.fact.data, fact_fields) if result else [],
            draft_rows=[_advice_row(m, result) for m in result.draft] if result else [],
            held_rows=[_advice_row(h.match, result, held=h) for h in result.draft_held] if result else [],
            live_rows=[_advice_row(m, result) for m in result.live] if result else [],
            live_held_rows=[_advice_row(h.match, result, held=h) for h in result.live_held] if result else [],
        ),
    )


def try_url(
    *, fact_type: str, data: Mapping[str, Any], occurred_at: dt.datetime, subject: str = "", fact_id: str = ""
) -> str:
    """The address of "try it" filled with an event as it was sent: its type, its values, its moment
    in its own offset and whose history it joins (the domain's pages link "Try this event" to it);
    ``fact_id``: the stored fact it stands for, left out of that history."""
    query = {"type": fact_type, "at": occurred_at.isoformat(timespec="minutes")}
    if subject:
        query["subject"] = subject
    if fact_id:
        query["event"] = fact_id
    for name, value in data.items():
        if value is not None:
            query[f"data_{name}"] = value_text(value)
    return f"{reverse('admin:rules_rule_try')}?{urlencode(query)}"


def try_initial(query: Mapping[str, str]) -> dict[str, Any]:
    """The try-it form's initial values from ``try_url``'s address: the moment in its own offset."""
    initial: dict[str, Any] = {name: value for name, value in query.items() if name.startswith("data_")}
    if query.get("subject"):
        initial["subject"] = query["subject"]
    if query.get("event"):
        initial["replacing"] = query["event"]
    try:
        at = dt.datetime.fromisoformat(query.get("at", ""))
    except ValueError:
        return initial
    if at.tzinfo is not None:
        initial["occurred_at"] = at.replace(tzinfo=None)
        initial["offset"] = int((at.utcoffset() or dt.timedelta(0)).total_seconds() // 60)
    return initial


def _advice_row(match: Any, result: simulation.TryResult, held: Any = None) -> dict[str, Any]:
    """What try-it shows of one piece of advice (given or held back), in a clinician's words."""
    return {
        "match": match,
        "held": held,
        "severity": registry.severity_label(match.severity),
        "category": registry.category_label(match.category),
        "bound": result.bound.get(match.rule_key, []),
        "matched": result.matched.get(match.rule_key, []),
    }


def _fact_rows(data: dict[str, Any], fields: dict[str, Any]) -> list[tuple[str, str, bool]]:
    rows = []
    for name, value in sorted(
        data.items(), key=lambda item: (fields.get(item[0]) is None or fields[item[0]].derived, item[0])
    ):
        spec = fields.get(name)
        label = spec.label if spec else name
        unit = spec.unit if spec else ""
        if isinstance(value, bool):
            shown = "yes" if value else "no"
        elif spec is not None and spec.choices and isinstance(value, str):
            shown = spec.choice_label(value)
        else:
            shown = with_unit(value, unit)
        rows.append((label, shown, bool(spec and spec.derived)))
    return rows


# -- simulate (the page itself: rules.admin.governance) ---------------------------------------
def simulation_status(model_admin: Any, request: HttpRequest, job_id: str) -> JsonResponse:
    """A simulation's progress, read from the database (any web process answers it)."""
    _require(request, PERM_VIEW)
    job = jobs.job_get(job_id)
    if job is None or job.kind != simulation.SIMULATION_JOB:
        raise Http404
    return JsonResponse(
        {
            "done": job.done,
            "total": job.total,
            "finished": job.finished,
            "status": job.get_status_display(),
            "error": job.error,
        }
    )


# -- re-evaluation after a publish -------------------------------------------------------------
MSG_REEVALUATION_STARTED = (
    "The evaluation of {count} {subjects} is running again as a job; their advice follows version {number} "
    "once it is done."
)
REEVALUATE_DAYS = 30  # the events judged again by default: as far back as a simulation looks


def _reevaluation_offered(version: RulesetVersion) -> bool:
    """Whether the domain can re-judge stored facts, and this version changed how any is judged."""
    source = registry.fact_source()
    if source is None or source.reevaluation_count(fact_types=set(), since=timezone.now()) is None:
        return False
    return bool(version_changed_fact_types(version))


def ruleset_reevaluate_view(model_admin: Any, request: HttpRequest) -> HttpResponse:
    """After a publish: the clinician's choice to judge the stored events of the last days of the
    subjects it concerns again with the new live version, as a job (advice already given was
    judged with the rules before it)."""
    _require(request, PERM_PUBLISH)
    version = RulesetVersion.objects.filter(number=request.GET.get("version") or 0).first() or version_live()
    source = registry.fact_source()
    if version is None or source is None:
        return HttpResponseRedirect(_changelist_url())
    fact_types = version_changed_fact_types(version)
    form = SimulateForm(request.POST or None, initial={"days": REEVALUATE_DAYS})
    days = form.cleaned_data["days"] if form.is_bound and form.is_valid() else REEVALUATE_DAYS
    since = timezone.now() - dt.timedelta(days=days)
    count = source.reevaluation_count(fact_types=fact_types, since=since) or 0
    if request.method == "POST" and form.is_valid() and count:
        job = source.reevaluation_start(fact_types=fact_types, since=since, user=request.user)
        subjects = registry.subject()[0 if count == 1 else 1]
        messages.success(
            request, MSG_REEVALUATION_STARTED.format(count=count, subjects=subjects, number=version.number)
        )
        return HttpResponseRedirect(reverse("admin:rules_job_change", args=[job.pk]))
    labels = sorted(registry.fact_type(name).label for name in fact_types if registry.fact_type(name))
    return _render(
        request,
        "reevaluate.html",
        _context(
            model_admin,
            request,
            "Re-run the evaluation with the new version?",
            version=version,
            form=form,
            count=count,
            days=days,
            fact_type_labels=labels,
        ),
    )


# -- discard the draft -------------------------------------------------------------------------
def draft_discard_view(model_admin: Any, request: HttpRequest) -> HttpResponse:
    """Confirm, then make the draft equal to the live version again (recorded as a discard)."""
    _require(request, *PERMS_DISCARD)
    state = draft_state()
    problem = MSG_NOTHING_LIVE if state.live is None else (MSG_NOTHING_TO_DISCARD if state.diff.empty else "")
    if request.method == "POST" and not problem:
        live = draft_discard(user=request.user)
        messages.success(request, MSG_DISCARDED.format(number=live.number))
        return HttpResponseRedirect(_changelist_url())
    return _render(
        request,
        "discard.html",
        _context(
            model_admin,
            request,
            "Discard the draft",
            problem=problem,
            diff_table=diff_html(state.diff) if not problem else "",
        ),
    )


# -- ruleset settings -------------------------------------------------------------------------
def ruleset_settings_view(model_admin: Any, request: HttpRequest) -> HttpResponse:
    """The draft's ruleset-wide settings (the most advice per event), next to the live ones."""
    _require(request, PERM_VIEW)
    if request.method == "POST":
        _require(request, PERM_CHANGE)
    form = RulesetSettingsForm(request.POST or None, initial=ruleset_draft_settings())
    if request.method == "POST" and form.is_valid():
        try:
            ruleset_settings_save(settings=form.cleaned_data, user=request.user)
        except RuleValidationError as exc:
            for name, problems in exc.errors.items():
                form.add_error(name if name in form.fields else None, problems)
        else:
            messages.success(request, MSG_SETTINGS_SAVED)
            return HttpResponseRedirect(reverse("admin:rules_rule_settings"))
    live = version_live()
    live_settings = settings_normalize(live.settings if live else None)
    return _render(
        request,
        "settings.html",
        _context(
            model_admin,
            request,
            "Ruleset settings",
            form=form,
            live_rows=[(form[name].label, live_settings[name]) for name in form.fields] if live else [],
            editable=request.user.has_perm(PERM_CHANGE),
        ),
    )


# -- rule packs -------------------------------------------------------------------------------
def pack_export_view(model_admin: Any, request: HttpRequest) -> HttpResponse:
    _require(request, PERM_EXPORT)
    pack = pack_export()
    response = HttpResponse(pack_dumps(pack), content_type="application/json; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d")
    response["Content-Disposition"] = f'attachment; filename="rules-pack-v{pack["ruleset_version"] or 0}-{stamp}.json"'
    return response


def pack_import_view(model_admin: Any, request: HttpRequest) -> HttpResponse:
    """Upload a pack, see it as a diff against the draft, then apply it as the new draft."""
    _require(request, *PERMS_IMPORT)
    form = ImportForm(request.POST or None, request.FILES or None)
    preview = specs = None
    pack_text = ""
    errors: dict[str, list[str]] = {}
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data.get("pack")
        # A file over the pack's bound is read no further than needed to refuse it.
        pack_text = (
            upload.read(PACK_MAX_BYTES + 1).decode("utf-8", errors="replace")
            if upload
            else form.cleaned_data.get("pack_text", "")
        )
        if not pack_text:
            form.add_error("pack", "Choose a rule pack file.")
        else:
            try:
                pack = pack_read(pack_text)
                specs = pack.rules
            except PackError as exc:
                form.add_error(None, exc.message)
                errors = exc.errors
            else:
                diff = ruleset_diff(
                    ruleset_draft_specs(),
                    specs,
                    settings_before=ruleset_draft_settings(),
                    settings_after=pack.settings,
                )
                if "_apply" in request.POST:
                    pack_import(specs=specs, settings=pack.settings, user=request.user)
                    messages.success(request, MSG_IMPORTED.format(summary=diff.summary()))
                    return HttpResponseRedirect(_changelist_url())
                preview = (diff, diff_html(diff))
    return _render(
        request,
        "import.html",
        _context(
            model_admin,
            request,
            "Import a rule pack",
            form=form,
            preview=preview,
            pack_text=pack_text,
            pack_errors=[(error_place(path), problems) for path, problems in sorted(errors.items())],
        ),
    )
