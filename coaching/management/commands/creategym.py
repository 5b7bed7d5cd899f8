from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from coaching.models import Gym
from coaching.services import gym_create, gym_key_rotate


class Command(BaseCommand):
    help = (
        "Create a gym and print its API key as the last line (the key is shown only once). "
        "With --rotate, issue a new key for the gym (creating it if missing); the old key stops working."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="The gym's name.")
        parser.add_argument("--rotate", action="store_true", help="Issue a new key and revoke the old one.")

    def handle(self, *args: Any, name: str, rotate: bool, **options: Any) -> None:
        name = name.strip()
        if not name:
            raise CommandError('Give the gym a name, for example: creategym "Riverside Runners".')
        gym = Gym.objects.filter(name=name).first()
        if gym is None:
            gym, key = gym_create(name=name)
            self.stdout.write(f'Created gym "{gym.name}". Its API key (shown only this once):')
        elif rotate:
            key = gym_key_rotate(gym=gym)
            self.stdout.write(f'Issued a new API key for gym "{gym.name}"; the old key no longer works:')
        else:
            self.stderr.write(
                f'Gym "{gym.name}" already exists. Its key was shown when it was created; run again with '
                "--rotate to issue a new one, or make more keys with manage.py gymkey."
            )
            return
        self.stdout.write(key)
