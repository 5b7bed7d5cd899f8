"""The rules app in the Django admin: the clinicians' workspace for rules, versions, the change
log and the jobs on the task queue.

Public: ``ActionPermissionMixin``, for the project's other admins (an action the user may not
run answers 403). Importing this package, as Django's admin does at start, registers the rules
models' admins (``modeladmins``). The modules inside it (the admins, their pages and forms, the
plain-language sentences and the audit reads) are private to it.
"""

from rules.admin import modeladmins  # noqa: F401  (registers the rules models' admins)
from rules.admin.actions import ActionPermissionMixin

__all__ = ["ActionPermissionMixin"]
