"""``manage.py createoperator``: the operator's account, made the way ``createclinician`` makes a
clinician's (idempotent, the password checked by the validators, no prompt without a terminal)."""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from coaching.services import operator_ensure

MSG_REFUSED = "The password was refused; nothing was changed:"
MSG_BLANK = "The password may not be blank."
MSG_CREATED_WITHOUT_LOGIN = (
    "Created operator {username} without a usable password: run this again with --password (or on a "
    "terminal) to set one."
)


class Command(BaseCommand):
    help = (
        "Create (or update) an operator: a superuser of the admin, who manages gyms, jobs and user accounts "
        "besides everything clinicians do. Safe to run again: an existing user becomes an operator and keeps "
        "their password unless --password gives a new one."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--email", default="", help="The operator's e-mail address (for password resets).")
        parser.add_argument("--password", help="The password (prompted for if omitted and a terminal is attached).")
        parser.add_argument(
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help="Never prompt; without --password a new user gets no usable password.",
        )

    def handle(
        self, *args: Any, username: str, email: str, password: str | None, interactive: bool, **options: Any
    ) -> None:
        if password is not None and not password:
            raise CommandError(MSG_BLANK)
        if not password and interactive and sys.stdin.isatty():
            password = getpass.getpass(f"Password for {username}: ")
            if not password:
                raise CommandError(MSG_BLANK)
            if password != getpass.getpass("Password (again): "):
                raise CommandError("The passwords do not match.")
        try:
            user, created = operator_ensure(username=username, password=password or None, email=email)
        except ValidationError as exc:  # the password validators' own words, one per line
            raise CommandError("\n".join([MSG_REFUSED, *exc.messages])) from exc
        if created and not user.has_usable_password():
            self.stdout.write(MSG_CREATED_WITHOUT_LOGIN.format(username=user.get_username()))
            return
        verb = "Created" if created else "Updated"
        self.stdout.write(f"{verb} operator {user.get_username()} (superuser of the admin).")
