"""Template tags of the rules admin for the project's own admin pages.

``{% rules_index_notes %}`` (the project's ``admin/index.html`` shows it above the apps): the
requests waiting for a clinician's approval and the rules past their review date, for those who
may read rules. ``{{ user|person }}``: a clinician by name.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from rules.governance import requests_pending
from rules.selectors import rules_past_review

register = template.Library()


@register.inclusion_tag("admin/rules/_index_notes.html", takes_context=True)
def rules_index_notes(context: dict[str, Any]) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.has_perm("rules.view_rule"):
        return {"overdue": [], "pending": []}
    pending = [
        {
            "what": str(waiting),
            "by": person(waiting.requested_by),
            "mine": waiting.requested_by_id == user.pk,
            "url": reverse("admin:rules_publishrequest_change", args=[waiting.pk]),
        }
        for waiting in requests_pending()
    ]
    today = timezone.localdate()
    overdue = [
        {
            "name": rule.name,
            "key": rule.key,
            "due": date_format(rule.review_due, "DATE_FORMAT"),
            "days": (today - rule.review_due).days,
            "url": reverse("admin:rules_rule_change", args=[rule.pk]),
        }
        for rule in rules_past_review(today=today)
    ]
    return {"overdue": overdue, "pending": pending, "list_url": reverse("admin:rules_rule_changelist") + "?review=past"}


@register.filter
def person(user: Any) -> str:
    """A clinician as the admin names them: their full name, else their username ("—": nobody)."""
    if user is None or not getattr(user, "pk", None):
        return "—"
    return user.get_full_name() or user.get_username()
