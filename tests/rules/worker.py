"""A separate worker process for the hot-reload test: evaluates a reading whenever asked.

Reads lines from stdin; for each, evaluates a reading with the temperature given on the
line and prints the live version and the rules that fired, as JSON. It never restarts.
"""

import datetime as dt
import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.rules.settings")

import django

django.setup()

from rules.evaluation import Fact, facts_evaluate  # noqa: E402

for number, line in enumerate(sys.stdin):
    fact = Fact(id=f"w{number}", type="reading", occurred_at=dt.datetime.now(dt.UTC), data={"temperature": float(line)})
    evaluation = facts_evaluate(fact=fact)
    print(
        json.dumps(
            {"version": evaluation.version, "fired": [m.rule_key for m in evaluation.matches], "pid": os.getpid()}
        ),
        flush=True,
    )
