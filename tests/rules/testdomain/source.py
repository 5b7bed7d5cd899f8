"""The test domain's stored facts for the rules admin: thermostats whose advice the domain keeps
as tallies per rule, subject and day, and whose cards a clinical system accepted or overrode."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from rules.registry import AdviceTally, FactSource, FeedbackTally


class ThermostatSource(FactSource):
    """Advice and feedback as the domain reports them (no stored facts to try or simulate)."""

    def __init__(self, tallies: Iterable[AdviceTally] = (), feedback: Iterable[FeedbackTally] = ()) -> None:
        self.tallies = list(tallies)
        self.feedback = list(feedback)
        self.asked: list[dt.date] = []

    def advice_statistics(self, *, first_day: dt.date) -> list[AdviceTally]:
        self.asked.append(first_day)
        return [t for t in self.tallies if t.day >= first_day]

    def feedback_statistics(self, *, first_day: dt.date, last_day: dt.date) -> list[FeedbackTally]:
        return [t for t in self.feedback if first_day <= t.day <= last_day]

    def subject_url(self, subject_id: str) -> str | None:
        return f"/thermostats/{subject_id}/"

    def subjects_words(self, subject_ids: Iterable[str]) -> dict[str, str]:
        return {subject: f"Thermostat {subject}" for subject in subject_ids}
