"""The catalog of facts a domain app declares to the rules engine.

The rules app knows nothing about any domain. A domain app fills this registry in its
``AppConfig.ready()`` with the fact types it will send for evaluation, their fields
(label, unit, kind, allowed values or range) and the derived figures it adds to each
fact. Validation, the compiler, the admin widgets and the plain-language sentences all
read the catalog from here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

NUMBER = "number"
INTEGER = "integer"
BOOLEAN = "boolean"
TEXT = "text"
DATE = "date"
KINDS = (NUMBER, INTEGER, BOOLEAN, TEXT, DATE)

# A step of a rule that matches a fact of any type (one that has the fields its conditions name).
ANY_FACT_TYPE = "any"
# A field every fact type has, read from the decision policy's state rather than the fact: whether
# the subject was under referral (referred and not cleared since) when the fact occurred.
UNDER_REFERRAL = "under_referral"


@dataclass(frozen=True)
class FieldSpec:
    """One field of a fact type, as rules may use it."""

    name: str
    label: str
    kind: str
    unit: str = ""
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    required: bool = False
    derived: bool = False
    help_text: str = ""
    # (code, label) for the choices whose label is not simply the code in words.
    choice_labels: tuple[tuple[str, str], ...] = ()
    # How the field reads inside a sentence when it holds ("numbness around the saddle area");
    # the label with a lower-case first letter when empty.
    phrase: str = ""
    # Read from the decision policy's state when the fact is judged, not from the fact itself.
    state: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Unknown field kind {self.kind!r} for {self.name!r}")

    @property
    def is_numeric(self) -> bool:
        return self.kind in (NUMBER, INTEGER)

    @property
    def in_words(self) -> str:
        """The field inside a sentence: its phrase, else its label with a lower-case first letter."""
        if self.phrase:
            return self.phrase
        label = self.label
        return label[:1].lower() + label[1:] if label[:2] != label[:2].upper() else label

    def choice_label(self, code: str) -> str:
        """How a member or clinician reads a choice: its label, else the code in words."""
        for choice, label in self.choice_labels:
            if choice == code:
                return label
        return str(code).replace("_", " ")

    def describe_range(self) -> str:
        """The values the field takes, as a clinician reads them: "0–10", "road, leaning back"."""
        if self.choices:
            return ", ".join(self.choice_label(code) for code in self.choices)
        if self.minimum is not None and self.maximum is not None:
            return f"{_fmt(self.minimum)}–{_fmt(self.maximum)}"
        if self.minimum is not None:
            return f"at least {_fmt(self.minimum)}"
        if self.maximum is not None:
            return f"at most {_fmt(self.maximum)}"
        return ""


@dataclass(frozen=True)
class FactType:
    """A kind of fact (an event type) with its fields, derived figures included."""

    name: str
    label: str
    fields: dict[str, FieldSpec] = dc_field(default_factory=dict)

    def field(self, name: str) -> FieldSpec | None:
        return self.fields.get(name)


@dataclass(frozen=True)
class Choice:
    code: str
    label: str


@dataclass(frozen=True)
class AdviceTally:
    """How much advice one rule gave one subject on one day, for the statistics page.

    ``day`` is the day of the event the advice belongs to, not the day the advice was stored
    (the domain picks the calendar, e.g. the event's own local date). ``subject`` is None when
    the source cannot say whose advice it was.
    """

    rule_key: str
    day: dt.date
    subject: str | None = None
    current: int = 0  # given and still standing
    withdrawn: int = 0  # given, then withdrawn (a later event showed it no longer held)


@dataclass(frozen=True)
class FeedbackTally:
    """How the cards of one rule given on one day landed: accepted, or overridden and why.

    ``reasons`` holds the words of each override reason given (a card overridden for two reasons
    counts in both), as the domain's list of reasons says them.
    """

    rule_key: str
    day: dt.date
    accepted: int = 0
    overridden: int = 0
    reasons: Mapping[str, int] = dc_field(default_factory=dict)


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class FactSource:
    """Where the domain's stored facts come from, for "try it" and simulation in the admin.

    A domain app subclasses this and registers an instance with
    ``registry.register_fact_source(...)``. Every hook returns plain ``rules.evaluation.Fact``
    objects, so the rules app never touches the domain's models.
    """

    def enrich(self, *, fact_type: str, data: dict, occurred_at, subject: str | None, replacing: str | None = None):
        """The fact as the engine would see it: ``data`` plus derived figures, as of
        ``occurred_at`` for subject ``subject`` (None: no history). Returns (Fact, history).
        ``replacing`` (passed only when given): a stored fact of the subject's that the tried one
        stands for ("Try this event"), which the history leaves out."""
        raise NotImplementedError

    def subjects(self, *, search: str = "", limit: int = 50) -> list[tuple[str, str]]:
        """(subject id, label) pairs a clinician may pick, e.g. members."""
        raise NotImplementedError

    def timelines(self, *, since, part: Any = None):
        """Iterate (facts, labels) for every subject with facts since ``since``: all of the
        subject's facts in judging order (time, ties broken the same way production breaks
        them) with their derived figures, and a label per fact id for people to read.
        ``part`` (passed only when not None): one of ``timeline_parts``, the subjects to read.

        Simulation judges each timeline from its first fact, exactly as production would.
        """
        raise NotImplementedError

    def timeline_parts(self, *, since, parts: int) -> list[Any]:
        """Up to ``parts`` JSON-able descriptions of disjoint sets of subjects that together hold
        every timeline since ``since``, in the order ``timelines`` yields them, so that a long
        simulation can be spread over workers and combined into exactly the single run's result.
        The default: one part, the whole."""
        return [None]

    def fact_count(self, *, since, part: Any = None) -> int:
        """How many facts occurred since ``since`` (what a simulation counts), of ``part`` when
        given. The default walks ``timelines``; a domain with a database answers with one count."""
        timelines = self.timelines(since=since) if part is None else self.timelines(since=since, part=part)
        return sum(1 for facts, _ in timelines for fact in facts if fact.occurred_at >= since)

    def advice_statistics(self, *, first_day: dt.date) -> Iterable[AdviceTally]:
        """The advice given on the days from ``first_day`` on, as ``AdviceTally`` rows (per rule,
        subject and day; current and withdrawn apart), each counted on the day of the event it
        belongs to, so that a backfill of a month of events spreads over that month. The default:
        none (a domain that keeps no advice)."""
        return ()

    def subject_url(self, subject_id: str) -> str | None:
        """The address of the domain's own page about a subject (e.g. a member's timeline), so
        that the rules admin can link every subject it names; None (the default): no link."""
        return None

    def fact_url(self, subject_id: str, fact_id: str, *, simulation: str = "") -> str | None:
        """The address of the domain's page about a subject at one of its facts; with
        ``simulation`` (a kept simulation's job id), one that shows there the advice the
        simulated draft gives (``rules.simulation.simulation_subject_events``). The default: the
        subject's page (``subject_url``)."""
        return self.subject_url(subject_id)

    def fact_words(self, fact: Any) -> str:
        """A fact in words for people ("Run, 6.2 km in 38 min, pain 2 → 6 → 5"). The default: its
        type's label and the values sent with it, each with its field's label and unit."""
        fact_type = registry.fact_type(fact.type)
        if fact_type is None:
            return str(fact.type).replace("_", " ").capitalize()
        shown = []
        for name, value in fact.data.items():
            spec = fact_type.field(name)
            if spec is None or spec.derived or value is None:
                continue
            if isinstance(value, bool):
                text = "yes" if value else "no"
            elif spec.choices and isinstance(value, str):
                text = spec.choice_label(value)
            else:
                text = f"{_fmt(value) if isinstance(value, float) else value}" + (f" {spec.unit}" if spec.unit else "")
            shown.append(f"{spec.label.lower()} {text}")
        return fact_type.label + (": " + ", ".join(shown) if shown else "")

    def feedback_statistics(self, *, first_day: dt.date, last_day: dt.date) -> Iterable[FeedbackTally]:
        """How the advice given on the days from ``first_day`` to ``last_day`` (counted, as in
        ``advice_statistics``, on the day of the event it belongs to) landed where it was shown:
        ``FeedbackTally`` rows per rule and day, each card counted once by its latest outcome.
        The default: none (a domain that takes no feedback)."""
        return ()

    def subjects_words(self, subject_ids: Iterable[str]) -> dict[str, str]:
        """How people name each of these subjects (e.g. "m-1042 (Riverside Runners)"), for lists
        of the subjects a rule reached. The default: their ids."""
        return {subject: subject for subject in subject_ids}

    def reevaluation_count(self, *, fact_types: set[str], since) -> int | None:
        """How many subjects have facts of ``fact_types`` since ``since``: those a re-evaluation
        after a publish would judge again with the new live version. None (the default): the
        domain offers no such re-evaluation, and the admin does not ask."""
        return None

    def reevaluation_start(self, *, fact_types: set[str], since, user: Any = None) -> Any:
        """Queue the re-evaluation ``reevaluation_count`` counts (their facts from ``since`` on,
        with the live version) as a job of ``rules.jobs``; returns the ``Job``."""
        raise NotImplementedError


def state_fields() -> tuple[FieldSpec, ...]:
    """The fields the decision policy supplies to every fact type (``FieldSpec.state``)."""
    return (
        FieldSpec(
            UNDER_REFERRAL,
            "Under referral",
            BOOLEAN,
            derived=True,
            state=True,
            help_text="referred and not cleared since, when the event occurred",
        ),
    )


@dataclass(frozen=True)
class Periodic:
    name: str
    every_seconds: int
    function: Callable[[], Any]


class Registry:
    """Fact types, derived figures, categories and severities known to the engine."""

    def __init__(self) -> None:
        self._fact_types: dict[str, FactType] = {}
        self._categories: dict[str, Choice] = {}
        self._severities: dict[str, Choice] = {}
        self._fact_source: FactSource | None = None
        self._subject = ("subject", "subjects")
        self._referral_floor: str | None = None
        self._job_handlers: dict[str, Callable[..., Any]] = {}
        self._job_combiners: dict[str, Callable[[list[Any]], Any]] = {}
        self._periodic: dict[str, Periodic] = {}
        self._indicators: dict[str, Choice] = {}
        self._indicator_defaults: dict[str, str] = {}
        self._safety_critical: Callable[[], Iterable[Mapping[str, Any]]] | None = None
        self._safety_specs: dict[str, Mapping[str, Any]] | None = None

    # -- declaration -------------------------------------------------------------------
    def register_fact_type(self, name: str, label: str, fields: Iterable[FieldSpec]) -> FactType:
        if name == ANY_FACT_TYPE:
            raise ValueError(f"{ANY_FACT_TYPE!r} names a step of any type; give the fact type another name")
        fact_type = FactType(name=name, label=label, fields={f.name: f for f in (*fields, *state_fields())})
        self._fact_types[name] = fact_type
        return fact_type

    def register_derived(self, fields: Iterable[FieldSpec], *, fact_types: Iterable[str] | None = None) -> None:
        """Declare figures the domain computes and adds to each fact of ``fact_types`` (all if None)."""
        targets = list(fact_types) if fact_types is not None else list(self._fact_types)
        derived = [f if f.derived else FieldSpec(**{**f.__dict__, "derived": True}) for f in fields]
        for name in targets:
            fact_type = self._fact_types[name]
            for spec in derived:
                fact_type.fields.setdefault(spec.name, spec)

    def register_categories(self, choices: Iterable[tuple[str, str]]) -> None:
        for code, label in choices:
            self._categories[code] = Choice(code, label)

    def register_severities(self, choices: Iterable[tuple[str, str]]) -> None:
        """Severities in display order, most urgent first."""
        for code, label in choices:
            self._severities[code] = Choice(code, label)

    def register_referral_floor(self, severity: str) -> None:
        """Under referral, only advice of ``severity`` or more urgent is given (default: the most urgent)."""
        self._referral_floor = severity

    def referral_floor_rank(self) -> int:
        codes = [choice.code for choice in self._severities.values()]
        return codes.index(self._referral_floor) if self._referral_floor in codes else 0

    def register_indicators(self, choices: Iterable[tuple[str, str]], *, defaults: Mapping[str, str]) -> None:
        """How urgent a piece of advice looks where it is shown (e.g. a CDS Hooks card's indicator),
        most urgent first; ``defaults`` gives each severity's indicator when a rule sets none."""
        for code, label in choices:
            self._indicators[code] = Choice(code, label)
        self._indicator_defaults = dict(defaults)

    def indicators(self) -> list[Choice]:
        return list(self._indicators.values())

    def indicator_defaults(self) -> dict[str, str]:
        """Severity code -> the indicator of its advice when the rule sets none."""
        return dict(self._indicator_defaults)

    def register_safety_critical(self, specs: Callable[[], Iterable[Mapping[str, Any]]]) -> None:
        """Rules every ruleset must keep switched on, no less urgent and looking for the same
        things (only their numbers and words may change): ``specs()`` gives each as the domain
        ships it (read when first needed, so it may validate against this very catalog)."""
        self._safety_critical = specs
        self._safety_specs = None

    def safety_critical(self) -> dict[str, Mapping[str, Any]]:
        """The safety-critical rules by key, as the domain ships them."""
        if self._safety_specs is None:
            provided = self._safety_critical() if self._safety_critical is not None else ()
            self._safety_specs = {spec["key"]: spec for spec in provided}
        return self._safety_specs

    def register_subject(self, singular: str, plural: str) -> None:
        """What the facts are about, in the admin's words (e.g. "member", "members")."""
        self._subject = (singular, plural)

    def subject(self) -> tuple[str, str]:
        """(singular, plural) of what the facts are about; ("subject", "subjects") by default."""
        return self._subject

    def register_fact_source(self, source: FactSource) -> None:
        self._fact_source = source

    def register_job(
        self, kind: str, handler: Callable[..., Any], *, combine: Callable[[Iterable[Any]], Any] | None = None
    ) -> None:
        """Work of ``kind`` that a worker runs from the task queue (``rules.jobs.job_start``).

        ``handler(job, progress)`` reads ``job.params``, calls ``progress(done, total)`` as it
        goes, and returns a JSON-serializable result, stored on the job. With ``combine``, the
        work may also be done in parts (``rules.jobs.job_start_parts``): ``handler`` does one
        part, and ``combine(results)`` makes the whole's result of the parts' (an iterable read once, in part order),
        which must equal what one job over all of it would have returned."""
        self._job_handlers[kind] = handler
        if combine is not None:
            self._job_combiners[kind] = combine

    def job_handler(self, kind: str) -> Callable[..., Any] | None:
        return self._job_handlers.get(kind)

    def job_combiner(self, kind: str) -> Callable[[list[Any]], Any] | None:
        return self._job_combiners.get(kind)

    def register_periodic(self, name: str, every_seconds: int, function: Callable[[], Any]) -> None:
        """``function()`` runs every ``every_seconds`` on one of the workers (exactly one per
        period, however many workers run); it returns a JSON-serializable summary."""
        self._periodic[name] = Periodic(name=name, every_seconds=every_seconds, function=function)

    def periodic(self) -> list[Periodic]:
        return list(self._periodic.values())

    def clear(self) -> None:
        self._fact_source = None
        self._subject = ("subject", "subjects")
        self._referral_floor = None
        self._fact_types.clear()
        self._categories.clear()
        self._severities.clear()
        self._indicators.clear()
        self._indicator_defaults = {}
        self._safety_critical = None
        self._safety_specs = None

    # -- lookup ------------------------------------------------------------------------
    def fact_type(self, name: str) -> FactType | None:
        """The fact type ``name``; for ``ANY_FACT_TYPE``, one with the fields of every type."""
        if name == ANY_FACT_TYPE and self._fact_types:
            fields: dict[str, FieldSpec] = {}
            for fact_type in self._fact_types.values():
                for field_name, spec in fact_type.fields.items():
                    fields.setdefault(field_name, spec)
            return FactType(name=ANY_FACT_TYPE, label="Any event", fields=fields)
        return self._fact_types.get(name)

    def fact_types_matched(self, name: str) -> list[str]:
        """The fact types a step of type ``name`` matches (every one for ``ANY_FACT_TYPE``)."""
        return list(self._fact_types) if name == ANY_FACT_TYPE else [name]

    def fact_types(self) -> list[FactType]:
        return list(self._fact_types.values())

    def fact_source(self) -> FactSource | None:
        return self._fact_source

    def categories(self) -> list[Choice]:
        return list(self._categories.values())

    def severities(self) -> list[Choice]:
        return list(self._severities.values())

    def category_label(self, code: str) -> str:
        choice = self._categories.get(code)
        return choice.label if choice else code

    def severity_label(self, code: str) -> str:
        choice = self._severities.get(code)
        return choice.label if choice else code

    def severity_rank(self, code: str) -> int:
        """The severity's place, most urgent first (0); unknown ones after every known one."""
        codes = list(self._severities)
        return codes.index(code) if code in codes else len(codes)

    def indicator_label(self, code: str) -> str:
        choice = self._indicators.get(code)
        return choice.label if choice else code


registry = Registry()
