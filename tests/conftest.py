"""Keeps the two suites apart: tests/rules runs under tests.rules.settings (no coaching)."""

from django.conf import settings

_rules_only = "coaching" not in settings.INSTALLED_APPS
collect_ignore_glob = ["coaching/*"] if _rules_only else ["rules/*"]
