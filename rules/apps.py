from django.apps import AppConfig
from django.conf import settings


class RulesConfig(AppConfig):
    name = "rules"
    verbose_name = "Rules"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from rules import checks  # noqa: F401  (registers system checks)
        from rules.jobs import jobs_sweep
        from rules.registry import registry
        from rules.simulation import SIMULATION_JOB, simulation_combine, simulation_job

        registry.register_job(SIMULATION_JOB, simulation_job, combine=simulation_combine)
        registry.register_periodic("jobs-sweep", int(getattr(settings, "JOBS_SWEEP_SECONDS", 60)), jobs_sweep)
