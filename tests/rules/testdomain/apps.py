"""A tiny made-up domain (a thermostat reading sensors) that exercises every field kind."""

from django.apps import AppConfig


class TestDomainConfig(AppConfig):
    name = "tests.rules.testdomain"
    label = "testdomain"

    def ready(self) -> None:
        from rules.registry import BOOLEAN, DATE, INTEGER, NUMBER, TEXT, FieldSpec, registry

        registry.register_fact_type(
            "reading",
            "Reading",
            [
                FieldSpec("temperature", "Temperature", NUMBER, unit="°C", minimum=-50, maximum=150),
                FieldSpec("level", "Level", INTEGER, minimum=0, maximum=10),
                FieldSpec("alarm", "Alarm", BOOLEAN),
                FieldSpec("room", "Room", TEXT, choices=("kitchen", "hall", "attic")),
                FieldSpec("serviced_on", "Serviced on", DATE),
            ],
        )
        registry.register_fact_type(
            "visit",
            "Visit",
            [
                FieldSpec("minutes", "Minutes", NUMBER, unit="min", minimum=0, maximum=600),
                FieldSpec("distance", "Distance walked", NUMBER, unit="m"),  # no range of its own
            ],
        )
        registry.register_derived(
            [FieldSpec("readings_today", "Readings today", INTEGER, minimum=0, maximum=1000)],
            fact_types=["reading"],
        )
        registry.register_categories([("safety", "Safety"), ("comfort", "Comfort")])
        registry.register_severities([("critical", "Critical"), ("urgent", "Urgent"), ("note", "Note")])
        # Under referral a thermostat still gets critical and urgent advice, never a note.
        registry.register_referral_floor("urgent")
        registry.register_indicators(
            [("red", "Red"), ("amber", "Amber"), ("green", "Green")],
            defaults={"critical": "red", "urgent": "amber", "note": "green"},
        )
        registry.register_subject("thermostat", "thermostats")
