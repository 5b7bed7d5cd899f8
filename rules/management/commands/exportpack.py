from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from rules.packs import pack_dumps, pack_export
from rules.selectors import version_live

MSG_NOTHING_LIVE = "Nothing has been published yet, so there is no live rule pack to export."


class Command(BaseCommand):
    help = (
        "Write the live rule pack (the published ruleset version, its rules and settings) as JSON, to FILE "
        "or to standard output. The file imports again with `importpack` or the admin's import."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", nargs="?", help="The file to write (default: standard output).")

    def handle(self, *args: Any, file: str | None = None, **options: Any) -> None:
        if version_live() is None:
            raise CommandError(MSG_NOTHING_LIVE)
        pack = pack_export()
        text = pack_dumps(pack)
        if file is None:
            self.stdout.write(text, ending="")
            return
        try:
            Path(file).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot write {file}: {exc.strerror or exc}.") from exc
        self.stdout.write(f"Wrote ruleset version {pack['ruleset_version']} ({len(pack['rules'])} rules) to {file}.")
