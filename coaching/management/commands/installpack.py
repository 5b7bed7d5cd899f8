from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from coaching.rulepack import LATEST
from coaching.services import rulepack_install


class Command(BaseCommand):
    help = (
        f"Install the default rule pack (version {LATEST}). On a new install it adds every rule, sets the "
        "ruleset settings and publishes. Later runs add rules that are missing (never one a clinician "
        "deleted) to the draft without publishing, and never overwrite a clinician's edit. Safe to run again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--upgrade",
            action="store_true",
            help=(
                f"Stage version {LATEST} of the default pack as the draft: rules still exactly as an earlier "
                "version shipped them are replaced, new rules are added, rules clinicians changed are left "
                "alone and listed. Never publishes: clinicians review, simulate and publish the draft."
            ),
        )

    def handle(self, *args: Any, upgrade: bool = False, **options: Any) -> None:
        result = rulepack_install(upgrade=upgrade)
        write = self.stdout.write
        pack = f"the default rule pack (version {LATEST})"
        if result.published:
            write(f"Installed {pack}: {len(result.added)} rules; published as ruleset version {result.published}.")
            return
        if not result.changed:
            write(f"Nothing to do: the draft is already up to date with {pack}.")
        elif upgrade:
            write(f"Staged {pack} in the draft. Nothing was published.")
        else:
            write(f"Added rules of {pack} to the draft. Nothing was published.")
        lines = [
            ("Updated (unchanged since an earlier version)", result.updated),
            ("Added", result.added),
            ("Left as clinicians changed them", result.kept),
            ("Replaced (safety-critical, changed in a way this version does not allow)", result.replaced),
            ("Not added back (deleted by a clinician)", result.deleted),
        ]
        for label, keys in lines:
            if keys:
                write(f"  {label}: {', '.join(keys)}")
        if result.settings_set:
            write("  Ruleset settings: set to the pack's.")
        if result.outdated:
            write(
                f"  {len(result.outdated)} rules are still as an earlier version of the pack shipped them; "
                f"run `manage.py installpack --upgrade` to stage version {LATEST} for review."
            )
        if result.changed:
            write("Review the draft in the admin, simulate it and publish it.")
