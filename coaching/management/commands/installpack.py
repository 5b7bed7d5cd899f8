from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from coaching.services import rulepack_install


class Command(BaseCommand):
    help = (
        "Install the default rule pack (RULES.md): adds rules whose keys are missing, never overwrites "
        "clinicians' edits, and publishes a version when something was added. Safe to run again."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        published = rulepack_install()
        self.stdout.write(
            "Installed the default rule pack and published it."
            if published
            else "The default rule pack is already installed."
        )
