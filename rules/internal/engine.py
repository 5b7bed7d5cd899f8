"""The durable_rules adapter: one long-lived compiled ruleset per rule version.

durable_rules is fast but has sharp edges: at most 1,024 state ids per ruleset, crashes when
state is deleted, leaked memory when rulesets are deleted with state, and background threads
in its Host. So this adapter never uses the Host or ``durable.lang``: it calls the C core
directly, keeps one scratch state id per ruleset, asserts the facts of one evaluation (or one
batch of evaluations), drains every action, and retracts exactly what it asserted. The
database stays the only source of truth, so any worker can evaluate any subject and nothing
lives in the engine between calls.

Every rule this adapter loads binds one fact: durable_rules corrupts memory when facts
that completed a multi-fact action are retracted (see rules.internal.compiler), so patterns are
chained by the adapter from per-step one-fact rules.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Sequence
from typing import Any

import durable_rules_engine as dre

# The C core is not thread-safe: every call into any handle holds this lock.
ENGINE_LOCK = threading.RLock()
_names = itertools.count(1)

# assert_facts result codes (durable.engine._handle_result)
_OK, _NOT_HANDLED, _OBSERVED = 0, 1, 2


class EngineStateError(RuntimeError):
    """The scratch state held facts it should not have; the ruleset must be rebuilt."""


class EngineClosedError(RuntimeError):
    """The ruleset was replaced by a newer version (and freed) while a caller still held it."""


class DurableRuleset:
    """One compiled durable_rules ruleset with a scratch state that is empty between calls."""

    def __init__(self, ruleset_json: str) -> None:
        self.empty = ruleset_json in ("{}", "")
        self.broken = False
        self._handle = None
        if not self.empty:
            with ENGINE_LOCK:
                self._handle = dre.create_ruleset(f"rules_{next(_names)}", ruleset_json)

    def run(self, documents: Sequence[dict[str, Any]]) -> list[str]:
        """Assert ``documents`` as facts, return every action message, leave the state empty."""
        if self.empty or not documents:
            return []
        payload = json.dumps(documents, separators=(",", ":"))
        messages: list[str] = []
        with ENGINE_LOCK:
            if self._handle is None:
                raise EngineClosedError("This compiled ruleset was replaced by a newer version.")
            if self.broken:
                raise EngineStateError("This compiled ruleset was left in an unknown state.")
            try:
                result = dre.assert_facts(self._handle, payload)
                if result[0] == _OBSERVED:
                    raise EngineStateError("A fact was already in the scratch state.")
                started = dre.start_action(self._handle)
                if started:
                    _, message, state_handle = started
                    while message:
                        messages.append(message)
                        message = dre.complete_and_start_action(self._handle, state_handle)
            except BaseException:
                self.broken = True
                raise
            finally:
                try:
                    dre.retract_facts(self._handle, payload)
                except BaseException:
                    self.broken = True
                    raise
        return messages

    def close(self) -> None:
        """Free the compiled ruleset (its scratch state is empty, which delete_ruleset tolerates)."""
        with ENGINE_LOCK:
            if self._handle is not None and not self.broken:
                dre.delete_ruleset(self._handle)
            self._handle = None


# The rule name and the bound ids are read straight off an action message, since parsing its
# JSON would be the largest cost of an evaluation: durable_rules echoes each bound fact's JSON
# text exactly as it was asserted, and every document starts with its "id" (runtime.evaluate).
_SINGLE_PREFIX = len('":{"m":{"id":"')


def single_binding(message: str) -> tuple[str, str]:
    """(rule name, engine id) of an action message of a one-fact rule."""
    end = message.index('"', 2)
    start = end + _SINGLE_PREFIX
    return message[2:end], message[start : message.index('"', start)]
