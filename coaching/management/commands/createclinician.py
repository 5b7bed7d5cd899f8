from __future__ import annotations

import getpass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from coaching.services import CLINICIANS_GROUP, clinician_ensure

MSG_REFUSED = "The password was refused; nothing was changed:"
MSG_BLANK = "The password may not be blank."


class Command(BaseCommand):
    help = (
        f"Create (or update) a staff user in the {CLINICIANS_GROUP} group, who can manage rules in the admin "
        "and read members, events and advice."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--password", help="The password (prompted for if omitted and a terminal is attached).")
        parser.add_argument(
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help="Never prompt; without --password a new user gets no usable password.",
        )

    def handle(self, *args: Any, username: str, password: str | None, interactive: bool, **options: Any) -> None:
        if password is not None and not password:
            raise CommandError(MSG_BLANK)
        if not password and interactive and self.stdin_is_tty():
            password = getpass.getpass(f"Password for {username}: ")
            if not password:
                raise CommandError(MSG_BLANK)
            if password != getpass.getpass("Password (again): "):
                raise CommandError("The passwords do not match.")
        try:
            user, created = clinician_ensure(username=username, password=password or None)
        except ValidationError as exc:  # the password validators' own words, one per line
            raise CommandError("\n".join([MSG_REFUSED, *exc.messages])) from exc
        verb = "Created" if created else "Updated"
        self.stdout.write(f"{verb} clinician {user.get_username()} (staff, group {CLINICIANS_GROUP}).")

    @staticmethod
    def stdin_is_tty() -> bool:
        import sys

        return sys.stdin.isatty()
