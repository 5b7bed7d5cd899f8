"""durable_rules' limit of 1,024 state ids per ruleset, and the adapter's way around it.

The C core holds at most 1,024 state ids (sids) per ruleset, and the 1,025th distinct sid
raises MemoryError, so one sid per subject would cap a deployment at 1,024 subjects. The
adapter evaluates every subject in one scratch sid (docs/architecture.md, the engine adapter).
The first test pins the limit on the Python running the suite (3.11, 3.12 or 3.13: the
3.13 build differs, see the Makefile); the second shows the adapter far past it.
"""

import datetime as dt
import subprocess
import sys

import pytest

from rules.evaluation import Fact, facts_evaluate
from tests.rules.conftest import T0, cond, make_spec

# In a child process: the 1,024 states cannot be freed (delete_state crashes on a sid with facts).
RAW_LIMIT = """
import json
import durable_rules_engine as dre

handle = dre.create_ruleset("sid_limit", json.dumps({"hot": {"all": [{"m": {"$gt": {"t": 30}}}]}}))
for sid in range(1, 1100):
    try:
        dre.assert_fact(handle, json.dumps({"id": "1", "sid": str(sid), "t": 31}))
    except MemoryError:
        print(f"MemoryError at sid {sid}")
        break
else:
    print("no limit")
"""


def test_durable_rules_refuses_the_1025th_state_id():
    done = subprocess.run([sys.executable, "-c", RAW_LIMIT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "MemoryError at sid 1025"


@pytest.mark.django_db
def test_the_adapter_evaluates_far_more_than_1024_subjects(publish):
    publish(
        make_spec("hot", conditions=[cond("temperature", "gt", 30)]),
        make_spec("hot-twice", pattern="count", count=2, window_hours=24, conditions=[cond("temperature", "gt", 30)]),
    )
    subjects = 3_000
    fired = 0
    for subject in range(subjects):
        earlier = Fact(id=f"{subject}.1", type="reading", occurred_at=T0, data={"temperature": 35}, group=str(subject))
        fact = Fact(
            id=f"{subject}.2",
            type="reading",
            occurred_at=T0 + dt.timedelta(hours=1),
            data={"temperature": 35},
            group=str(subject),
        )
        matches = facts_evaluate(fact=fact, history=[earlier]).matches
        assert sorted(m.rule_key for m in matches) == ["hot", "hot-twice"], subject
        fired += len(matches)
    assert fired == 2 * subjects
