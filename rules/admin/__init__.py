"""The rules app in the Django admin: the clinicians' workspace for rules, versions, the change
log and the jobs on the task queue.

Public: ``ActionPermissionMixin``, for the project's other admins (an action the user may not
run answers 403), and ``try_url``, the address of "try it" filled with a stored event (a domain's
page about a subject links each of its events there). Importing this package, as Django's admin
does at start, registers the rules models' admins (``modeladmins``). The modules inside it (the
admins, their pages and forms, the plain-language sentences and the audit reads) are private to it.
"""

from rules.admin import modeladmins  # noqa: F401  (registers the rules models' admins)
from rules.admin.actions import ActionPermissionMixin
from rules.admin.views import try_url

__all__ = ["ActionPermissionMixin", "try_url"]
