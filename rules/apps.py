from django.apps import AppConfig


class RulesConfig(AppConfig):
    name = "rules"
    verbose_name = "Rules"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from rules import checks  # noqa: F401  (registers system checks)
