"""The clinician's pages for judging a change before it reaches anyone, and for its sign-off:
the simulation (the rows behind every figure, the burden beside it), the request to publish or
roll back, and the request's page, where another clinician approves it.

Each view checks permissions, calls one service or selector (``rules.simulation``,
``rules.governance``) and renders; ``RuleAdmin.get_urls`` wires them in.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse

from rules import governance, simulation
from rules.admin.audit import diff_html, draft_state
from rules.admin.describe import moment_words
from rules.admin.forms import PublishForm, RequestDecisionForm, RollbackForm, SimulateForm
from rules.admin.views import (
    PERM_PUBLISH,
    PERM_VIEW,
    PERMS_ROLLBACK,
    _changelist_url,
    _context,
    _reevaluation_offered,
    _render,
    _require,
)
from rules.models import PublishRequest, RulesetVersion
from rules.packs import ruleset_diff
from rules.registry import registry
from rules.selectors import version_live
from rules.spec import RuleValidationError, error_place

ROWS_PER_PAGE = 50
# The kinds of row a simulation's page filters by, in words.
KIND_CHOICES = [
    ("", "any change"),
    *((kind, simulation.KIND_LABELS[kind]) for kind in simulation.KINDS),
    ("live", "all the live version's advice"),
    ("draft", "all the draft's advice"),
]
MSG_REQUESTED = "Your request is waiting for another clinician's approval: {link}."
MSG_PUBLISHED = "Version {number} is live."
MSG_ROLLED_BACK = "Version {old} was published again as version {number}; the draft now equals it."
MSG_APPROVED_WAITING = "Your approval is recorded; the request needs {more} more."
MSG_WITHDRAWN = "The request was withdrawn."
MSG_SIMULATION_RUNNING = "The simulation of this draft is still running; this page shows its result when it is done."


def _simulate_url(**query: Any) -> str:
    kept = {name: value for name, value in query.items() if value not in (None, "")}
    return f"{reverse('admin:rules_rule_simulate')}?{urlencode(kept)}" if kept else reverse("admin:rules_rule_simulate")


def _advice_cell(advice: simulation.Advised | None) -> dict[str, str] | None:
    if advice is None:
        return None
    return {"severity": registry.severity_label(advice.severity), "summary": advice.summary, "message": advice.message}


def _row(row: simulation.SimulationRow, job_id: str) -> dict[str, Any]:
    """One row of a simulation as the page shows it: the event in words, whose, when, and the
    rule's advice with the live version and with the draft."""
    source = registry.fact_source()
    event = row.event
    return {
        "when": moment_words(event.occurred_at),
        "event_url": source.fact_url(event.subject, event.fact_id, simulation=job_id) if source else None,
        "subject": event.subject_label,
        "subject_url": source.subject_url(event.subject) if source else None,
        "words": event.words,
        "rule_name": row.rule_name,
        "rule_key": row.rule_key,
        "kind": row.kind,
        "kind_words": simulation.KIND_LABELS.get(row.kind, "the same advice"),
        "live": _advice_cell(row.live),
        "draft": _advice_cell(row.draft),
    }


FIGURES = ("live", "draft", *simulation.KINDS)


def _figure_links(job_id: str, rule: str = "") -> dict[str, str]:
    """The address of the rows behind each figure of a rule (or of the totals)."""
    return {name: _simulate_url(job=job_id, rule=rule, kind=name) for name in FIGURES}


def rows_title(kind: str, rule_name: str) -> str:
    """What the rows shown are, in words: "Where “Stop when it hurts” would disappear"."""
    what = f"“{rule_name}”" if rule_name else "the advice"
    if kind in ("live", "draft"):
        return (
            f"Advice of {what} {simulation.KIND_LABELS[kind]}"
            if rule_name
            else simulation.KIND_LABELS[kind].capitalize()
        )
    return f"Where {what} {simulation.KIND_LABELS.get(kind, 'would change in any way')}"


# -- simulate ---------------------------------------------------------------------------------
def ruleset_simulate(model_admin: Any, request: HttpRequest) -> HttpResponse:
    """Simulate the draft against the live version over the stored events of the last N days;
    a simulation's page shows its summary (each figure linking to its rows), the burden of both
    versions, and the rows, filtered by rule and by kind of change."""
    _require(request, PERM_VIEW)
    if registry.fact_source() is None:
        return _render(
            request,
            "unavailable.html",
            _context(model_admin, request, "Simulate", reason=simulation.MSG_NO_FACT_SOURCE),
        )
    form = SimulateForm(request.POST or None, initial={"days": 30})
    if request.method == "POST" and form.is_valid():
        days = form.cleaned_data["days"]
        if simulation.simulation_facts_since(days) > simulation.BACKGROUND_ABOVE:
            job = simulation.simulation_start(days=days, user=request.user)
        else:
            ran = simulation.simulation_run(simulation.simulation_prepare(days=days))
            job = simulation.simulation_store(ran, user=request.user)
        return HttpResponseRedirect(_simulate_url(job=job.pk))
    job = result = None
    context: dict[str, Any] = {}
    if request.GET.get("job"):
        found = simulation.simulation_get(request.GET["job"])
        if found is None:
            raise Http404("This simulation is no longer available; run it again.")
        job, result = found
        form = SimulateForm(initial={"days": job.params.get("days", 30)})
    if result is not None:
        context = _result_context(request, result, str(job.pk))
    return _render(
        request,
        "simulate.html",
        _context(
            model_admin,
            request,
            "Simulate the draft",
            form=form,
            days=form["days"].value() or 30,
            result=result,
            job=job,
            status_url=reverse("admin:rules_rule_simulate_status", args=[job.pk]) if job else "",
            **context,
        ),
    )


def _result_context(request: HttpRequest, result: simulation.SimulationResult, job_id: str) -> dict[str, Any]:
    rule, kind = request.GET.get("rule", ""), request.GET.get("kind", "")
    if kind not in ("", "live", "draft", *simulation.KINDS):
        kind = ""
    names = {impact.key: impact.name for impact in result.rules}
    if rule not in names:
        rule = ""
    rows = simulation.simulation_rows(result, rule=rule, kind=kind)
    page = Paginator(rows, ROWS_PER_PAGE).get_page(request.GET.get("page") or 1)
    return {
        "rules_ordered": [
            {"impact": impact, "links": _figure_links(job_id, impact.key)} for impact in result.rules_changed_first
        ],
        "totals_links": _figure_links(job_id),
        "burden": result.burden,
        "rows": [_row(row, job_id) for row in page.object_list],
        "rows_page": page,
        "rows_count": len(rows),
        "rows_title": rows_title(kind, names.get(rule, "")),
        "filter_rule": rule,
        "filter_rule_name": names.get(rule, ""),
        "filter_kind": kind,
        "kind_choices": KIND_CHOICES,
        "previous_url": _simulate_url(job=job_id, rule=rule, kind=kind, page=page.previous_page_number())
        if page.has_previous()
        else "",
        "next_url": _simulate_url(job=job_id, rule=rule, kind=kind, page=page.next_page_number())
        if page.has_next()
        else "",
        "simulate_url": reverse("admin:rules_rule_simulate"),
    }


# -- publish: a request, or at once when sign-off is off ------------------------------------------
def ruleset_publish_view(model_admin: Any, request: HttpRequest) -> HttpResponse:
    """The draft's diff against the live version, with the newest simulation of this very draft
    (run now when there is none) and its burden; the clinician's comment, and a reason when the
    draft is flagged, make a request another clinician approves."""
    _require(request, PERM_PUBLISH)
    state = draft_state()
    needed = governance.approvals_needed()
    pending = governance.requests_pending()
    job = result = None
    problem = governance.MSG_NOTHING_TO_PUBLISH if state.diff.empty and state.live is not None else ""
    if not problem and registry.fact_source() is not None:
        job = simulation.simulation_of_draft(user=request.user)
        result = simulation.simulation_result(job)
    flagged = bool(result and result.burden and result.burden.flagged)
    form = PublishForm(request.POST or None, needs_reason=flagged)
    if request.method == "POST" and form.is_valid() and not problem:
        if job is not None and result is None:
            form.add_error(None, MSG_SIMULATION_RUNNING)
        else:
            try:
                made = governance.publish_request_create(
                    user=request.user,
                    comment=form.cleaned_data["comment"],
                    reason=form.cleaned_data.get("reason", ""),
                    simulation_job=job if job is not None else simulation.simulation_store(_empty_result()),
                )
            except governance.RequestRefused as exc:
                form.add_error(None, str(exc))
            except RuleValidationError as exc:
                for path, problems in exc.errors.items():
                    form.add_error(None, f"{error_place(path)}: {' '.join(problems)}")
            else:
                return _after_request(request, made)
    return _render(
        request,
        "publish.html",
        _context(
            model_admin,
            request,
            "Publish the draft" if needed == 0 else "Ask to publish the draft",
            form=form,
            problem=problem,
            diff_table=diff_html(state.diff),
            job=job,
            result=result,
            burden=result.burden if result else None,
            flagged=flagged,
            approvals_needed=needed,
            approvals_off=governance.MSG_APPROVALS_OFF if needed == 0 else "",
            pending=pending,
            simulation_url=_simulate_url(job=job.pk) if job is not None else "",
            status_url=reverse("admin:rules_rule_simulate_status", args=[job.pk]) if job is not None else "",
        ),
    )


def _empty_result() -> simulation.SimulationResult:
    """A simulation of nothing, for a domain that stores no facts to simulate with."""
    from django.utils import timezone

    from rules.selectors import ruleset_draft_fingerprint

    live = version_live()
    return simulation.SimulationResult(
        since=timezone.now(),
        days=0,
        events=0,
        subjects=0,
        seconds=0.0,
        live_version=live.number if live else 0,
        rules=[],
        burden=simulation.burden_of([], since=timezone.now()),
        fingerprint=ruleset_draft_fingerprint(),
    )


def _after_request(request: HttpRequest, made: PublishRequest) -> HttpResponse:
    if made.status == PublishRequest.Status.PUBLISHED and made.version is not None:
        version = made.version
        if made.kind == PublishRequest.Kind.ROLLBACK:
            messages.success(request, MSG_ROLLED_BACK.format(old=made.rollback_to, number=version.number))
            return HttpResponseRedirect(_changelist_url())
        messages.success(request, MSG_PUBLISHED.format(number=version.number))
        if _reevaluation_offered(version):
            return HttpResponseRedirect(f"{reverse('admin:rules_rule_reevaluate')}?version={version.number}")
        return HttpResponseRedirect(_changelist_url())
    url = reverse("admin:rules_publishrequest_change", args=[made.pk])
    messages.success(request, MSG_REQUESTED.format(link="its page shows what it would change"))
    return HttpResponseRedirect(url)


# -- roll back: a request too ---------------------------------------------------------------------
def ruleset_rollback_view(model_admin: Any, request: HttpRequest) -> HttpResponse:
    _require(request, *PERMS_ROLLBACK)
    data = request.POST if request.method == "POST" else (request.GET if "version" in request.GET else None)
    form = RollbackForm(data)
    preview = None
    needed = governance.approvals_needed()
    if data is not None and form.is_valid():
        number = form.cleaned_data["version"]
        if request.method == "POST" and "_confirm" in request.POST:
            try:
                made = governance.rollback_request_create(
                    user=request.user, version=number, comment=form.cleaned_data.get("comment") or ""
                )
            except governance.RequestRefused as exc:
                form.add_error(None, str(exc))
            else:
                return _after_request(request, made)
        live = version_live()
        chosen = RulesetVersion.objects.get(number=number)
        preview = diff_html(
            ruleset_diff(
                live.snapshot if live else [],
                chosen.snapshot,
                settings_before=live.settings if live else None,
                settings_after=chosen.settings,
            )
        )
    return _render(
        request,
        "rollback.html",
        _context(
            model_admin,
            request,
            "Roll back to an earlier version" if needed == 0 else "Ask to roll back to an earlier version",
            form=form,
            preview=preview,
            approvals_off=governance.MSG_APPROVALS_OFF if needed == 0 else "",
            versions=RulesetVersion.objects.select_related("created_by")[:20],
        ),
    )


# -- a request's page: approve or withdraw ----------------------------------------------------------
def request_record(publish_request: PublishRequest) -> dict[str, Any]:
    """What a request froze, as its page and its version's page show it."""
    return {
        "subject": registry.subject()[0],
        "subjects": registry.subject()[1],
        "req": publish_request,
        "diff_table": diff_html(governance.diff_load(publish_request.diff)),
        "frozen_simulation": publish_request.simulation,
        "frozen_burden": simulation.burden_load(publish_request.burden),
        "approvals": list(publish_request.approvals.select_related("approved_by")),
        "simulation_url": _simulate_url(job=publish_request.simulation_job)
        if publish_request.simulation_job and simulation.simulation_get(publish_request.simulation_job)
        else "",
    }


def request_view(model_admin: Any, request: HttpRequest, object_id: str) -> HttpResponse:
    """A request with what it froze; another clinician approves it here, its author may withdraw it."""
    _require(request, PERM_VIEW)
    publish_request = get_object_or_404(PublishRequest.objects.select_related("requested_by", "version"), pk=object_id)
    perms = PERMS_ROLLBACK if publish_request.kind == PublishRequest.Kind.ROLLBACK else (PERM_PUBLISH,)
    may_decide = request.user.has_perms(perms)
    is_author = publish_request.requested_by_id == request.user.pk
    form = RequestDecisionForm(request.POST or None)
    if request.method == "POST":
        _require(request, *perms)
        if form.is_valid():
            try:
                if "_withdraw" in request.POST:
                    governance.publish_request_withdraw(request=publish_request, user=request.user)
                    messages.success(request, MSG_WITHDRAWN)
                    return HttpResponseRedirect(reverse("admin:rules_publishrequest_change", args=[object_id]))
                version = governance.publish_request_approve(
                    request=publish_request, user=request.user, comment=form.cleaned_data.get("comment", "")
                )
            except governance.RequestRefused as exc:
                form.add_error(None, str(exc))
            except RuleValidationError as exc:
                for path, problems in exc.errors.items():
                    form.add_error(None, f"{error_place(path)}: {' '.join(problems)}")
            else:
                publish_request.refresh_from_db()
                if version is None:
                    more = publish_request.approvals_needed - publish_request.approvals.count()
                    messages.success(request, MSG_APPROVED_WAITING.format(more=more))
                    return HttpResponseRedirect(reverse("admin:rules_publishrequest_change", args=[object_id]))
                return _after_request(request, publish_request)
    pending = publish_request.status == PublishRequest.Status.PENDING
    approved_already = publish_request.approvals.filter(approved_by_id=request.user.pk).exists()
    return _render(
        request,
        "request.html",
        _context(
            model_admin,
            request,
            str(publish_request),
            form=form,
            may_approve=pending and may_decide and not is_author and not approved_already,
            may_withdraw=pending and is_author,
            own_request=governance.MSG_OWN_REQUEST if pending and is_author else "",
            approved_already=governance.MSG_APPROVED_ALREADY if pending and approved_already else "",
            **request_record(publish_request),
        ),
    )
