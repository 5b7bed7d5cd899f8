from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from rules.packs import PackError, pack_import, pack_publish_by_operator, pack_read, ruleset_diff, spec_comparable
from rules.selectors import ruleset_draft_settings, ruleset_draft_specs, version_live
from rules.spec import settings_normalize

MSG_COMMENT_WITHOUT_PUBLISH = "--comment describes the version --publish makes; add --publish or leave it out."
MSG_PUBLISH_WITHOUT_COMMENT = (
    '--publish makes the pack live at once, without a clinician\'s approval: say why with --comment "..."; '
    "the version and the change log keep it as your act."
)


class Command(BaseCommand):
    help = (
        "Import a rule pack (JSON, as `exportpack` and the admin's export write it). It is validated exactly "
        "as the admin's import validates it, then becomes the draft for clinicians to review, simulate and "
        "publish; with --publish (and its required --comment) it also goes live at once, recorded in the "
        "change log as the operator's act. A pack with any problem changes nothing: each problem is printed as "
        "'rule key: field: message' and the command exits with status 1."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The rule pack to import.")
        parser.add_argument(
            "--publish", action="store_true", help="Publish the pack as a new ruleset version (live at once)."
        )
        parser.add_argument(
            "--comment", default="", help="Why it goes live: the published version's comment (required with --publish)."
        )

    def handle(self, *args: Any, file: str, publish: bool = False, comment: str = "", **options: Any) -> None:
        if comment and not publish:
            raise CommandError(MSG_COMMENT_WITHOUT_PUBLISH)
        try:
            text = Path(file).read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror or exc}.") from exc
        try:
            pack = pack_read(text)
        except PackError as exc:
            for where, messages in sorted(exc.errors.items()):
                for message in messages:
                    self.stderr.write(f"{where}: {message}")
            raise CommandError(exc.message) from None
        if publish and not comment.strip():
            raise CommandError(MSG_PUBLISH_WITHOUT_COMMENT)

        draft = [spec_comparable(spec) for spec in ruleset_draft_specs()]
        settings = settings_normalize(pack.settings)
        staged = draft != pack.rules or ruleset_draft_settings() != settings
        live = version_live()
        summary = ruleset_diff(draft, pack.rules).summary()
        with transaction.atomic():
            version = None
            if publish:
                version = pack_publish_by_operator(pack=pack, comment=comment.strip())
            elif staged:
                pack_import(specs=pack.rules, settings=settings)
        if staged:
            self.stdout.write(f"The draft is now this pack ({summary}).")
        if version is not None:
            self.stdout.write(f"Published it as ruleset version {version.number}.")
        elif publish:
            self.stdout.write(f"It is already live as ruleset version {live.number}; nothing was published.")
        elif staged:
            self.stdout.write("Review, simulate and publish it in the admin.")
        else:
            self.stdout.write("The draft already equals this pack; nothing to do.")
