from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def cache_table_create(*, using: str, verbosity: int = 1, **kwargs: Any) -> None:
    """The database cache's table (throttle counters, settings.CACHES) is made wherever
    ``migrate`` runs: ``make setup``, a fresh ``make run``, the test databases. Does nothing
    when it exists, or when the cache is Redis."""
    from django.core.management import call_command

    call_command("createcachetable", database=using, verbosity=0)


class CoachingConfig(AppConfig):
    name = "coaching"
    verbose_name = "Coaching"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from rules.registry import registry
        from rules.signals import job_finished

        from .catalog import catalog_register
        from .facts import CoachingFactSource
        from .jobs import jobs_register
        from .metrics import job_observed
        from .rulepack import safety_critical_specs

        catalog_register(registry)
        registry.register_fact_source(CoachingFactSource())
        registry.register_safety_critical(safety_critical_specs)
        jobs_register(registry)
        job_finished.connect(job_observed, dispatch_uid="coaching.metrics.job_observed")
        post_migrate.connect(cache_table_create, sender=self, dispatch_uid="coaching.cache_table_create")
