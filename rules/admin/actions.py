"""Admin actions the user may not run answer 403, as the admin's own pages do.

Django offers only the actions a user has the permissions for, but a POST naming another one
gets a quiet "No action selected" (or, when the user may run no action at all, the list again).
The rules admin uses this mixin, and it is public for the project's other admins too (as
``rules.admin.ActionPermissionMixin``): an action that writes is refused loudly, server-side,
whatever the page showed.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse


class ActionPermissionMixin:
    """For a ``ModelAdmin``: a POST of an action missing from ``get_actions(request)`` (an action
    the user lacks the permission for, or none of this admin's) raises ``PermissionDenied``."""

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        # Also the confirmation of delete_selected, which posts the action again.
        action = request.POST.get("action", "") if request.method == "POST" else ""
        if action and action not in self.get_actions(request):  # type: ignore[attr-defined]
            raise PermissionDenied
        return super().changelist_view(request, extra_context)  # type: ignore[misc]
