from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from coaching.models import Gym, Member
from coaching.services import events_reevaluate, members_for_reevaluation


class Command(BaseCommand):
    help = (
        "Re-judge stored events with the live rules, each member's in time order (after an outage or a "
        "rule fix): advice that still holds is kept as it is, advice that now holds is added, and advice "
        "that no longer holds is withdrawn, never duplicated. --pending limits it to events whose "
        "evaluation has not succeeded yet."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--member", help="Only this member (the gym's member id).")
        parser.add_argument("--gym", help="Only this gym (name); also narrows --member.")
        parser.add_argument("--since", help="Only events that occurred on or after this date (YYYY-MM-DD) or ISO time.")
        parser.add_argument(
            "--pending",
            action="store_false",
            dest="include_evaluated",
            help="Only events whose evaluation failed or never ran (after an outage).",
        )
        parser.add_argument(
            "--all",
            action="store_true",
            dest="include_evaluated",
            help="Every selected event, evaluated or not (the default; kept for older scripts).",
        )
        parser.set_defaults(include_evaluated=True)

    def handle(
        self,
        *args: Any,
        member: str | None,
        gym: str | None,
        since: str | None,
        include_evaluated: bool,
        **options: Any,
    ) -> None:
        gym_obj = None
        if gym:
            gym_obj = Gym.objects.filter(name=gym).first()
            if gym_obj is None:
                raise CommandError(f'No gym named "{gym}".')
        members: list[Member | None] = [None]
        if member:
            found = Member.objects.filter(external_id=member)
            if gym_obj is not None:
                found = found.filter(gym=gym_obj)
            members = list(found)
            if not members:
                raise CommandError(f'No member "{member}".')
        since_at = _parse_since(since) if since else None

        total = sum(
            sum(members_for_reevaluation(member=m, gym=gym_obj, since=since_at, pending=not include_evaluated).values())
            for m in members
        )
        events = failed = created = withdrawn = 0
        # A progress bar on a terminal only: into a log it would write a line per update.
        with tqdm(total=total, unit="event", file=self.stderr._out, disable=True if total == 0 else None) as bar:
            for m in members:
                result = events_reevaluate(
                    member=m, gym=gym_obj, since=since_at, pending=not include_evaluated, progress=bar.update
                )
                events, failed = events + result.events, failed + result.failed
                created, withdrawn = created + result.advice_created, withdrawn + result.advice_withdrawn
        self.stdout.write(
            f"Re-evaluated {events} events: {created} new advice, {withdrawn} withdrawn, {failed} failed."
        )
        if failed:
            self.stdout.write("Failed events keep their error (see the admin) and are retried on the next run.")


def _parse_since(value: str) -> datetime:
    try:
        parsed = (
            datetime.fromisoformat(value)
            if "T" in value.upper()
            else datetime.combine(date.fromisoformat(value), time.min)
        )
    except ValueError:
        raise CommandError("--since must be a date (YYYY-MM-DD) or an ISO 8601 date and time.") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
