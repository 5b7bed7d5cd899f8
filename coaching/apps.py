from django.apps import AppConfig


class CoachingConfig(AppConfig):
    name = "coaching"
    verbose_name = "Coaching"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from rules.registry import registry

        from .catalog import catalog_register
        from .facts import CoachingFactSource
        from .jobs import jobs_register

        catalog_register(registry)
        registry.register_fact_source(CoachingFactSource())
        jobs_register(registry)
