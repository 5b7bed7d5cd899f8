from django.apps import AppConfig


class RulesConfig(AppConfig):
    name = "rules"
    verbose_name = "Rules"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from rules import checks  # noqa: F401  (registers system checks)
        from rules.jobs import jobs_sweep
        from rules.registry import registry
        from rules.simulation import SIMULATION_JOB, simulation_job

        registry.register_job(SIMULATION_JOB, simulation_job)
        registry.register_periodic("jobs-sweep", 60, jobs_sweep)
