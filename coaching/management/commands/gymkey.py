from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from coaching.keys import ALL_SCOPES, SCOPES, scopes_parse
from coaching.models import Gym, GymKey
from coaching.services import gym_key_create, gym_key_name_in_use, gym_key_revoke, gym_key_rotate

DURATION = re.compile(r"^(\d+)\s*([smhd])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def duration(text: str) -> timedelta:
    match = DURATION.match(text.strip())
    if match is None:
        raise CommandError(f"Give the grace period as a number and a unit, for example 24h or 7d (not {text!r}).")
    return timedelta(**{UNITS[match[2]]: int(match[1])})


class Command(BaseCommand):
    help = (
        "A gym's API keys, each with a name and scopes: make one (its key printed as the last line, shown "
        "only once), list them, rotate one (a new key with the same scopes; --grace keeps the old one working "
        f"for a while) or revoke one. Scopes: {', '.join(f'{s} ({w})' for s, w in SCOPES.items())}."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("gym", nargs="?", help="The gym's name.")
        parser.add_argument("--name", default="default", help="The key's name (default: default).")
        parser.add_argument("--scopes", default=",".join(ALL_SCOPES), help="Comma-separated scopes (default: all).")
        parser.add_argument("--list", action="store_true", help="List the gym's keys (never the keys themselves).")
        parser.add_argument(
            "--rotate",
            metavar="NAME",
            help="Rotate a key: with a gym given, NAME is the key's name; alone, NAME is the gym's and its key "
            "named by --name (default: default) is rotated.",
        )
        parser.add_argument(
            "--grace", default="0s", help="How long a rotated key keeps working: 24h, 7d (default: 0s)."
        )
        parser.add_argument("--revoke", metavar="NAME", help="Revoke the gym's keys named NAME at once.")

    def handle(self, *args: Any, gym: str | None, name: str, scopes: str, **options: Any) -> None:
        rotate, revoke = options["rotate"], options["revoke"]
        if rotate and not gym:
            gym, key_name = rotate, name
        else:
            key_name = rotate or name
        if not gym:
            raise CommandError('Name the gym, for example: gymkey "Riverside Runners" --name app --scopes events:write')
        found = Gym.objects.filter(name=gym.strip()).first()
        if found is None:
            raise CommandError(f'There is no gym named "{gym}" (creategym makes one).')
        if options["list"]:
            for key in GymKey.objects.filter(gym=found).order_by("name", "created_at"):
                if key.revoked_at:
                    state = "revoked"
                elif key.expires_at and key.expires_at <= timezone.now():
                    state = "expired " + key.expires_at.isoformat()
                else:
                    state = "until " + key.expires_at.isoformat() if key.expires_at else "works"
                used = key.last_used_at.isoformat() if key.last_used_at else "never used"
                self.stdout.write(f"{key.name}\t{key.key_prefix}…\t{','.join(key.scopes)}\t{used}\t{state}")
            return
        if revoke:
            keys = list(GymKey.objects.filter(gym=found, name=revoke, revoked_at__isnull=True))
            if not keys:
                raise CommandError(f'Gym "{found.name}" has no key named "{revoke}" in use.')
            for key in keys:
                gym_key_revoke(key=key)
            self.stdout.write(f'Revoked the key "{revoke}" of gym "{found.name}".')
            return
        if rotate:
            if not GymKey.objects.filter(gym=found, name=key_name, revoked_at__isnull=True).exists():
                raise CommandError(f'Gym "{found.name}" has no key named "{key_name}" to rotate.')
            grace = duration(options["grace"])
            secret = gym_key_rotate(gym=found, name=key_name, grace=grace)
            until = (
                f"keeps working until {(timezone.now() + grace).isoformat(timespec='minutes')}"
                if grace
                else "no longer works"
            )
            self.stdout.write(
                f'New key "{key_name}" for gym "{found.name}"; the old one {until}. The new key (shown only now):'
            )
            self.stdout.write(secret)
            return
        try:
            chosen = scopes_parse(scopes)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if gym_key_name_in_use(gym=found, name=name):
            raise CommandError(
                f'Gym "{found.name}" already has a key named "{name}": name the new one with --name, '
                f"or replace that one with --rotate."
            )
        _key, secret = gym_key_create(gym=found, name=name, scopes=chosen)
        self.stdout.write(f'Key "{name}" for gym "{found.name}" with scopes {", ".join(chosen)} (shown only now):')
        self.stdout.write(secret)
