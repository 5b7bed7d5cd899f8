"""The bare import: a JSON Lines file of events, validated and bulk-inserted, nothing else.

    DJANGO_SETTINGS_MODULE=bench.bare.settings python -m bench.bare.importevents FILE --gym NAME

The floor ``manage.py importevents`` is measured against: each line is read, validated with
``event_validate`` and stored with ``bulk_create`` (1,000 rows a transaction; a repeated
external id is skipped by the database), with no figures, no evaluation and no advice.
Prints one line: lines read, bad lines, events created.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

CHUNK = 1000


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file")
    parser.add_argument("--gym", required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.bare.settings")
    import django

    django.setup()
    from django.db import transaction

    from coaching.evaluation import event_build
    from coaching.models import Event, Gym, Member
    from coaching.services import event_content_hash
    from coaching.validation import event_validate

    gym = Gym.objects.get(name=args.gym)
    before = Event.objects.filter(gym=gym).count()
    members = {member.external_id: member for member in Member.objects.filter(gym=gym)}
    lines = bad = 0
    pending: list = []

    def flush() -> None:
        with transaction.atomic():
            missing = {clean.member for clean in pending} - members.keys()
            Member.objects.bulk_create([Member(gym=gym, external_id=name) for name in missing], ignore_conflicts=True)
            members.update({m.external_id: m for m in Member.objects.filter(gym=gym, external_id__in=missing)})
            rows = [
                event_build(gym=gym, member=members[clean.member], clean=clean, content_hash=event_content_hash(clean))
                for clean in pending
            ]
            Event.objects.bulk_create(rows, ignore_conflicts=True)
        pending.clear()

    with open(args.file, encoding="utf-8") as source:
        for line in source:
            if not line.strip():
                continue
            lines += 1
            try:
                clean, errors = event_validate(json.loads(line))
            except ValueError:
                clean, errors = None, {"line": ["not JSON"]}
            if errors or clean is None:
                bad += 1
                continue
            pending.append(clean)
            if len(pending) >= CHUNK:
                flush()
    if pending:
        flush()
    created = Event.objects.filter(gym=gym).count() - before
    print(f"{lines} lines, {bad} bad, {created} events created")
    return 0


if __name__ == "__main__":
    sys.exit(main())
