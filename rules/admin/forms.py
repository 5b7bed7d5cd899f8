"""Admin forms: the rule editor (a rule form and three formsets), try-it and publish forms.

The editor's forms only collect what a clinician typed; ``RuleEditor`` turns them into a
rule spec (see rules.spec), and puts the spec's validation messages back on the widgets
they belong to. The catalog (event types, fields, units, choices) drives every widget.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from django import forms
from django.forms import formset_factory
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.functional import lazy
from django.utils.text import format_lazy

from rules.internal.render import chips_from_placeholders, placeholders_from_chips
from rules.models import RulesetVersion
from rules.registry import ANY_FACT_TYPE, BOOLEAN, DATE, INTEGER, NUMBER, TEXT, FieldSpec, registry
from rules.spec import (
    ADVICE_LIMIT_MAX,
    COOLDOWN_MAX_DAYS,
    COUNT,
    COUNT_MAX,
    DAYS_COUNT_LABEL,
    DAYS_MAX,
    DISPLAY_MAX_DAYS,
    EVIDENCE_LEVELS,
    KIND_LABELS,
    MATCHED_PLACEHOLDER,
    MSG_NOT_INTEGER,
    MSG_NOT_NUMBER,
    NUMBER_MAX,
    OPERATORS,
    PARAMETER_KINDS,
    PATTERNS,
    PRIORITY_MAX,
    RULE_FIELDS,
    RULESET_SETTINGS,
    SEQUENCE,
    SETTING_LABELS,
    SINGLE,
    SUMMARY_MAX,
    WINDOW_MAX_HOURS,
    placeholder_labels,
    rule_field_label,
    value_text,
)
from rules.spec import DAYS as DAYS_PATTERN

PARAMETER_KIND_LABELS = {NUMBER: "Number", INTEGER: "Whole number", BOOLEAN: "Yes / no", TEXT: "Text", DATE: "Date"}


# Form classes are built at import, before a domain has registered its subject's name.
_subject = lazy(lambda: registry.subject()[0], str)
_label = lazy(rule_field_label, str)


def _referral_floor_label() -> str:
    severities = registry.severities()
    return severities[registry.referral_floor_rank()].label if severities else "the most urgent"


# What the editor's script says as a clinician types a number (the server's validation stays the authority).
LIVE_CHECK_MESSAGES = {
    "outside": "{value} is outside {low}–{high}.",
    "below": "{value} is under {low}, the lowest possible value.",
    "above": "{value} is over {high}, the highest possible value.",
    "number": MSG_NOT_NUMBER,
    "integer": MSG_NOT_INTEGER,
}
# The rule's own settings a message may name (rules.spec.MESSAGE_EXTRA_PLACEHOLDERS), with the
# patterns that have them; each is inserted as its labelled chip (rules.spec.SETTING_LABELS).
_EVERY_PATTERN = [SINGLE, SEQUENCE, COUNT, DAYS_PATTERN]
SETTING_PLACEHOLDERS = [
    {"name": "count", "label": SETTING_LABELS["count"], "patterns": [COUNT]},
    {"name": "count", "label": DAYS_COUNT_LABEL, "patterns": [DAYS_PATTERN]},
    {"name": "window_days", "label": SETTING_LABELS["window_days"], "patterns": [SEQUENCE, COUNT]},
    {"name": "window_hours", "label": SETTING_LABELS["window_hours"], "patterns": [SEQUENCE, COUNT]},
    {"name": "cooldown_days", "label": SETTING_LABELS["cooldown_days"], "patterns": _EVERY_PATTERN},
    {"name": MATCHED_PLACEHOLDER, "label": SETTING_LABELS[MATCHED_PLACEHOLDER], "patterns": _EVERY_PATTERN},
    # The referral in force: for a rule that fires only under referral (validation says so otherwise).
    {"name": "referral_since", "label": SETTING_LABELS["referral_since"], "patterns": [SINGLE]},
    {"name": "referral_rule", "label": SETTING_LABELS["referral_rule"], "patterns": [SINGLE]},
    {"name": "referral_advice", "label": SETTING_LABELS["referral_advice"], "patterns": [SINGLE]},
]
# The patterns as the editor explains them, next to the choice (the catalog of what a rule can match).
PATTERN_HELP = {
    SINGLE: "The rule looks at each event on its own.",
    SEQUENCE: "Events of the kinds below, one after the other, the last at most the time window after the first.",
    COUNT: "Several events that each meet the conditions below, all within the time window.",
    DAYS_PATTERN: (
        "An event that meets the conditions below on each of several days in a row, ending on the day of the "
        "event judged (for example a run on hills on 3 days in a row). Days are the {subject}'s own calendar "
        "days, in the time zone each event was sent with; more events on one day count as one day."
    ),
}
COUNT_LABELS = {COUNT: SETTING_LABELS["count"], DAYS_PATTERN: DAYS_COUNT_LABEL}


def catalog_json() -> dict[str, Any]:
    """The catalog and operators for the editor's script (rendered with ``json_script``)."""
    return {
        "derived_label": f"Figures from the {registry.subject()[0]}'s history",
        "settings": SETTING_PLACEHOLDERS,
        "patterns": [
            {"code": code, "label": label, "help": PATTERN_HELP[code].format(subject=registry.subject()[0])}
            for code, label in PATTERNS.items()
        ],
        "count_labels": COUNT_LABELS,
        "messages": LIVE_CHECK_MESSAGES,
        "limits": {
            "count": [2, COUNT_MAX],
            "days": [2, DAYS_MAX],
            "window_hours": [0, WINDOW_MAX_HOURS],
            "cooldown_days": [0, COOLDOWN_MAX_DAYS],
            "priority": [0, PRIORITY_MAX],
            "display_days": [0, DISPLAY_MAX_DAYS],
            "number": NUMBER_MAX,
        },
        "fact_types": [
            {
                "name": ft.name,
                "label": ft.label,
                "fields": [
                    {
                        "name": f.name,
                        "label": f.label,
                        "kind": f.kind,
                        "unit": f.unit,
                        "choices": [[code, f.choice_label(code)] for code in f.choices],
                        "min": f.minimum,
                        "max": f.maximum,
                        "derived": f.derived,
                        "state": f.state,
                        "help": f.help_text,
                    }
                    for f in ft.fields.values()
                ],
            }
            for ft in _fact_types_offered()
        ],
        "operators": [
            {"code": code, "label": label, "kinds": list(kinds), "needs_value": needs}
            for code, (label, kinds, needs) in OPERATORS.items()
        ],
    }


def _field_choices() -> list:
    groups = []
    for fact_type in registry.fact_types():
        options = [(f.name, f"{f.label}" + (f" ({f.unit})" if f.unit else "")) for f in fact_type.fields.values()]
        groups.append((fact_type.label, options))
    return [("", "— field —"), *groups]


KEY_FIXED_HELP = "Fixed once the rule exists: its advice and its change log refer to it."

HOURS, DAYS, WEEKS = "hours", "days", "weeks"
WINDOW_UNITS = {DAYS: "days", HOURS: "hours"}
COOLDOWN_UNITS = {DAYS: "days", WEEKS: "weeks"}
_HOURS_IN = {HOURS: 1, DAYS: 24}
_DAYS_IN = {DAYS: 1, WEEKS: 7}
# Spec fields the editor shows as a number and a unit: spec field -> (number field, unit field).
AMOUNT_FIELDS = {"window_hours": ("window", "window_unit"), "cooldown_days": ("cooldown", "cooldown_unit")}


def window_amount(hours: Any) -> tuple[Any, str]:
    """A window in hours as the editor shows it: whole days in days, anything else in hours."""
    if hours in (None, ""):
        return None, DAYS
    hours = float(hours)
    if hours > 0 and hours % 24 == 0:
        return int(hours // 24), DAYS
    return (int(hours) if hours.is_integer() else hours), HOURS


def cooldown_amount(days: Any) -> tuple[Any, str]:
    """A cooldown in days as the editor shows it: whole weeks in weeks, anything else in days."""
    days = int(days or 0)
    return (days // 7, WEEKS) if days > 0 and days % 7 == 0 else (days, DAYS)


KEY_HELP = (
    "Made from the name as you type it. Exports and other clinical systems name the rule by it; it is fixed once "
    "the rule is saved."
)
MESSAGE_HELP = (
    "What the {} reads. The buttons below insert a value of the matched event, a parameter or a setting of this "
    "rule: it shows as a labelled chip here, such as [Pain after the run], and as the value itself in the advice."
)
REVIEW_BY_HELP = "When a clinician should look at this rule again. Empty: a year after it last changed."


def key_from_name(name: str) -> str:
    """The key a new rule gets from its name: "Pain twice in a few days" -> "pain-twice-in-a-few-days".
    (The editor's script derives the same as the clinician types.)"""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:70].rstrip("-")


class RuleForm(forms.Form):
    key = forms.SlugField(max_length=80, required=False, help_text=KEY_HELP)
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 80}))
    category = forms.ChoiceField()
    severity = forms.ChoiceField()
    enabled = forms.BooleanField(required=False, initial=True)
    pattern = forms.ChoiceField(choices=list(PATTERNS.items()), initial="single")
    count = forms.IntegerField(
        required=False,
        min_value=2,
        label=SETTING_LABELS["count"],
        widget=forms.NumberInput(attrs={"class": "rules-number-short"}),
    )
    # The time window in days or hours, as the clinician chooses; the spec stores hours.
    window = forms.FloatField(
        required=False,
        label="Within",
        help_text="How close in time the events must be: the last at most this long after the first.",
        widget=forms.NumberInput(attrs={"class": "rules-number", "step": "any", "min": 0}),
    )
    window_unit = forms.ChoiceField(choices=list(WINDOW_UNITS.items()), initial=DAYS, label="Unit of the window")
    message = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}), help_text=format_lazy(MESSAGE_HELP, _subject())
    )
    source_label = forms.CharField(
        max_length=300,
        required=False,
        label="Source",
        help_text="Where the advice comes from: a guideline, a study, an article.",
        widget=forms.TextInput(attrs={"size": 80}),
    )
    evidence_level = forms.ChoiceField(
        label=_label("evidence_level"),
        choices=list(EVIDENCE_LEVELS.items()),
        help_text="What the advice rests on, strongest first.",
    )
    review_by = forms.DateField(
        required=False,
        label=_label("review_by"),
        help_text=REVIEW_BY_HELP,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    summary = forms.CharField(
        required=False,
        label=_label("summary"),
        help_text=format_lazy(
            "What to do, in at most {} characters: many clinical systems show only this line. "
            "It may use the same values as the message; empty: the rule's name.",
            SUMMARY_MAX,
        ),
        widget=forms.TextInput(attrs={"size": 80, "class": "rules-counted", "data-max": SUMMARY_MAX}),
    )
    # The cooldown in days or weeks (a cooldown is whole days); the spec stores days.
    cooldown = forms.IntegerField(
        required=False,
        initial=0,
        label="Cooldown",
        help_text=format_lazy(
            "No new advice from this rule for the same {} within this long of its last advice (0: no limit).",
            _subject(),
        ),
        widget=forms.NumberInput(attrs={"class": "rules-number-short", "min": 0, "step": 1}),
    )
    cooldown_unit = forms.ChoiceField(choices=list(COOLDOWN_UNITS.items()), initial=DAYS, label="Unit of the cooldown")
    holds_back_lower = forms.BooleanField(
        required=False,
        label=_label("holds_back_lower"),
        help_text="When this rule gives advice, less urgent advice on the same event is not given.",
    )
    refers = forms.BooleanField(
        required=False,
        label=_label("refers"),
        help_text=format_lazy(
            "When this rule gives advice, the {} is under referral from that event on: until the referral is "
            "cleared, only advice at least as urgent as “{}” is given.",
            _subject(),
            lazy(_referral_floor_label, str)(),
        ),
    )
    follows_referral = forms.BooleanField(
        required=False,
        label=_label("follows_referral"),
        help_text=format_lazy(
            "Under referral, this advice takes the referral's severity when that is more urgent (a reminder "
            "to a {} referred for an emergency is an emergency).",
            _subject(),
        ),
    )
    indicator = forms.ChoiceField(
        required=False,
        label=_label("indicator"),
        help_text="How the advice looks on a clinical system's card (HL7 CDS Hooks). By default it follows "
        "the severity: critical for emergencies and referrals, warning for stop and caution, info for tips.",
    )
    priority = forms.IntegerField(
        initial=RULE_FIELDS["priority"][1],
        label=_label("priority"),
        help_text=format_lazy(
            "Among advice of the same severity, lower numbers are given first (0 to {}), when an event "
            "gives more advice than the ruleset allows.",
            PRIORITY_MAX,
        ),
        widget=forms.NumberInput(attrs={"class": "rules-number-short", "min": 0, "max": PRIORITY_MAX}),
    )
    display_days = forms.IntegerField(
        required=False,
        initial=RULE_FIELDS["display_days"][1],
        min_value=0,
        max_value=DISPLAY_MAX_DAYS,
        label="Shown for (days)",
        help_text=format_lazy(
            "How many days after the event its advice stays among what to show the {} now "
            "(0: until it is withdrawn; 0 to {}).",
            _subject(),
            DISPLAY_MAX_DAYS,
        ),
        widget=forms.NumberInput(attrs={"class": "rules-number-short", "min": 0, "max": DISPLAY_MAX_DAYS}),
    )
    revision = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(
        self, *args: Any, fixed_key: str | None = None, safety: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        if fixed_key:
            # A saved rule's key never changes: a key in the posted data is ignored (Django's disabled field).
            self.fields["key"].disabled = True
            self.fields["key"].help_text = KEY_FIXED_HELP
            self.initial["key"] = fixed_key
        else:
            self.fields["key"].widget.attrs.update({"class": "rules-key-input"})
        pattern = self.data.get("pattern") if self.is_bound else self.initial.get("pattern")
        self.fields["count"].label = COUNT_LABELS.get(pattern, SETTING_LABELS["count"])
        self.fields["category"].choices = [("", "—")] + [(c.code, c.label) for c in registry.categories()]
        self.fields["severity"].choices = [("", "—")] + [(s.code, s.label) for s in registry.severities()]
        defaults = registry.indicator_defaults()
        self.fields["indicator"].choices = [("", "As its severity says")] + [
            (choice.code, choice.label) for choice in registry.indicators()
        ]
        if defaults:
            self.fields["indicator"].help_text += " Severities: " + "; ".join(
                f"{registry.severity_label(code)}: {registry.indicator_label(indicator).lower()}"
                for code, indicator in defaults.items()
            )
        if safety is not None:
            self._safety_fix(safety)

    def _safety_fix(self, reference: Mapping[str, Any]) -> None:
        """A safety-critical rule: the form does not offer to switch it off, to make it less urgent
        or to stop it holding back or referring (a post that tries anyway is refused by the rule's
        validation, with the reason)."""
        self.fields["enabled"].disabled = True
        self.initial["enabled"] = True
        self.fields["enabled"].help_text = SAFETY_ALWAYS_ON
        floor = registry.severity_rank(reference["severity"])
        # Every severity stays valid (a lower one posted anyway is refused with the reason); only
        # the ones at least as urgent are offered.
        self.fields["severity"].widget.choices = [
            (s.code, s.label) for s in registry.severities() if registry.severity_rank(s.code) <= floor
        ]
        for name in ("holds_back_lower", "refers", "follows_referral"):
            if reference.get(name):
                self.fields[name].disabled = True
                self.initial[name] = True
                self.fields[name].help_text = SAFETY_ALWAYS_ON


SAFETY_ALWAYS_ON = "Always on: this rule is safety-critical."


def _fact_types_offered() -> list:
    """The event types a step may match: each registered type, then any of them."""
    found = registry.fact_type(ANY_FACT_TYPE)
    return [*registry.fact_types(), *([found] if found else [])]


class StepForm(forms.Form):
    fact_type = forms.ChoiceField(label="Event type")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["fact_type"].choices = [("", "— event type —")] + [
            (ft.name, ft.label) for ft in _fact_types_offered()
        ]


class ConditionForm(forms.Form):
    """One condition. Its event (``step``) and its block (``group``) are hidden: the editor shows
    conditions under their event, in "any of these" blocks that all must hold."""

    step = forms.IntegerField(min_value=1, initial=1, widget=forms.HiddenInput)
    group = forms.IntegerField(min_value=1, initial=1, widget=forms.HiddenInput)
    negate = forms.BooleanField(required=False, label="not")
    field = forms.CharField(widget=forms.Select)
    operator = forms.ChoiceField(choices=[("", "—")] + [(code, label) for code, (label, _, _) in OPERATORS.items()])
    value = forms.CharField(required=False, max_length=300)
    parameter = forms.CharField(required=False, max_length=60, widget=forms.Select)

    def __init__(self, *args: Any, parameters: list[tuple[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["field"].widget.choices = _field_choices()
        choices = [("", "— or a parameter —"), *(parameters or [])]
        current = self.data.get(self.add_prefix("parameter")) if self.is_bound else self.initial.get("parameter")
        if current and current not in dict(choices):
            choices.append((current, current))  # keeps a parameter that no longer exists, to show the error
        self.fields["parameter"].widget.choices = choices

    def has_changed(self) -> bool:
        # A new row carries its event and block: it is still blank until something else is filled in.
        return any(name not in ("step", "group") for name in self.changed_data)


MSG_PARAMETER_LABEL = "Give the parameter a label, for example “Pain threshold”."


def parameter_name(label: str) -> str:
    """The name a parameter gets from its label: "Pain threshold (/10)" -> "pain_threshold_10".
    (The editor's script derives the same as the clinician types.)"""
    ascii_label = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    name = re.sub(r"[^a-z0-9]+", "_", ascii_label.lower()).strip("_")
    if name[:1].isdigit():
        name = f"p_{name}"
    return name[:60].rstrip("_")


class ParameterForm(forms.Form):
    """One parameter, made from its label: the name placeholders and conditions use follows the label."""

    label = forms.CharField(
        required=False, max_length=200, widget=forms.TextInput(attrs={"size": 24, "class": "rules-param-label"})
    )
    name = forms.RegexField(
        regex=r"^[a-z_][a-z0-9_]*$",
        required=False,
        max_length=60,
        widget=forms.HiddenInput(attrs={"class": "rules-param-name"}),
        error_messages={"invalid": "Use lower-case letters, digits and underscores, starting with a letter."},
    )
    kind = forms.ChoiceField(choices=[(k, PARAMETER_KIND_LABELS[k]) for k in PARAMETER_KINDS], initial=NUMBER)
    value = forms.CharField(max_length=300, widget=forms.TextInput(attrs={"size": 8}))
    unit = forms.CharField(required=False, max_length=30, widget=forms.TextInput(attrs={"size": 6}))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if not cleaned.get("name") and "name" not in self.errors:
            name = parameter_name(cleaned.get("label") or "")
            if name:
                cleaned["name"] = name
            else:
                self.add_error("label", MSG_PARAMETER_LABEL)
        return cleaned


StepFormSet = formset_factory(StepForm, extra=0, can_delete=True, min_num=0)
ConditionFormSet = formset_factory(ConditionForm, extra=0, can_delete=True)
NewConditionFormSet = formset_factory(ConditionForm, extra=1, can_delete=True)
ParameterFormSet = formset_factory(ParameterForm, extra=0, can_delete=True)

# The editor edits every scalar field of a spec (rules.spec.RULE_FIELDS); yes/no ones are checkboxes.
_TOP_LEVEL = tuple(RULE_FIELDS)
_CHECKBOXES = tuple(name for name, (_, default) in RULE_FIELDS.items() if isinstance(default, bool))
# Condition fields the clinician never sees: their refusals are shown on the condition's row.
_HIDDEN_CONDITION_FIELDS = ("step", "group")


@dataclass
class ConditionBlock:
    """Conditions of one event that share a group: "any of these"; the blocks of an event all hold."""

    group: int
    forms: list[forms.Form] = dc_field(default_factory=list)

    @property
    def alternatives(self) -> int:
        return sum(1 for form in self.forms if not _deleted(form))


@dataclass
class EventSection:
    """One event of the rule (a step) with its condition blocks, as the editor shows it."""

    number: int  # 1, 2 ... among the events kept; 0 for a removed one
    step_form: forms.Form | None  # None: conditions naming an event the rule does not have
    blocks: list[ConditionBlock]

    @property
    def removed(self) -> bool:
        return self.step_form is not None and _deleted(self.step_form)


class RuleEditor:
    """The editor's forms for one rule, bound to POST data or filled from a spec."""

    def __init__(
        self,
        *,
        data: Mapping[str, Any] | None = None,
        spec: Mapping[str, Any] | None = None,
        revision: int | None = None,
        fixed_key: str | None = None,
        key_taken: Callable[[str], bool] | None = None,
    ) -> None:
        spec = spec or {}
        self.fixed_key = fixed_key
        self.key_taken = key_taken or (lambda key: False)
        # A saved safety-critical rule: what the form does not offer to change (RuleForm._safety_fix).
        self.safety = registry.safety_critical().get(fixed_key) if fixed_key else None
        if data is not None:
            self.rule = RuleForm(data, fixed_key=fixed_key, safety=self.safety)
            self.steps = StepFormSet(data, prefix="steps")
            self.conditions = ConditionFormSet(
                data, prefix="conditions", form_kwargs={"parameters": _posted_parameters(data)}
            )
            self.parameters = ParameterFormSet(data, prefix="parameters")
        else:
            initial = {
                name: spec[name] if spec.get(name) is not None else default
                for name, (_, default) in RULE_FIELDS.items()
                if spec.get(name) is not None or default is not None
            }
            initial["window"], initial["window_unit"] = window_amount(spec.get("window_hours"))
            initial["cooldown"], initial["cooldown_unit"] = cooldown_amount(spec.get("cooldown_days"))
            initial["revision"] = revision
            # Inserted values show as labelled chips, "[Pain after the run]", never as {placeholders}.
            labels = placeholder_labels(spec)
            for name in ("message", "summary"):
                if initial.get(name):
                    initial[name] = chips_from_placeholders(str(initial[name]), labels)
            self.rule = RuleForm(initial=initial, fixed_key=fixed_key, safety=self.safety)
            self.steps = StepFormSet(prefix="steps", initial=spec.get("steps") or [{}])
            parameters = sorted(
                ((p["name"], p.get("label") or p["name"]) for p in spec.get("parameters") or [] if p.get("name")),
                key=lambda p: p[1].lower(),
            )
            conditions = [
                {**c, "value": value_text(c.get("value")), "parameter": c.get("parameter") or ""}
                for c in spec.get("conditions") or []
            ]
            # A new rule starts with one empty condition, posted back as an added one: left empty, it is ignored.
            formset = ConditionFormSet if conditions else NewConditionFormSet
            self.conditions = formset(prefix="conditions", form_kwargs={"parameters": parameters}, initial=conditions)
            self.parameters = ParameterFormSet(
                prefix="parameters",
                initial=[{**p, "value": value_text(p.get("value"))} for p in spec.get("parameters") or []],
            )
        self._step_forms: list[forms.Form] = []
        self._condition_forms: list[forms.Form] = []
        self._parameter_forms: list[forms.Form] = []

    @property
    def formsets(self) -> list:
        return [self.steps, self.conditions, self.parameters]

    def is_valid(self) -> bool:
        return all([self.rule.is_valid(), *(fs.is_valid() for fs in self.formsets)])

    @property
    def expected_revision(self) -> int | None:
        return (
            self.rule.cleaned_data.get("revision")
            if self.rule.is_bound and hasattr(self.rule, "cleaned_data")
            else None
        )

    def sections(self) -> list[EventSection]:
        """The events with their condition blocks, in order (removed events too, so the page can
        post them back); conditions naming an event the rule lacks come last, in their own section."""
        by_step: dict[int, dict[int, list[forms.Form]]] = {}
        for form in self.conditions.forms:
            step, group = _int(_value(form, "step"), 1), _int(_value(form, "group"), 1)
            by_step.setdefault(step, {}).setdefault(group, []).append(form)

        def blocks(groups: dict[int, list[forms.Form]]) -> list[ConditionBlock]:
            return [ConditionBlock(group, forms_) for group, forms_ in sorted(groups.items())]

        sections, number = [], 0
        for form in self.steps.forms:
            if _deleted(form):
                sections.append(EventSection(0, form, []))
                continue
            number += 1
            sections.append(EventSection(number, form, blocks(by_step.pop(number, {}))))
        sections.extend(EventSection(step, None, blocks(groups)) for step, groups in sorted(by_step.items()))
        return sections

    @property
    def empty_section(self) -> EventSection:
        """A new event, for the page's template of one (its names hold ``__prefix__``)."""
        return EventSection(0, self.steps.empty_form, [])

    @property
    def empty_block(self) -> ConditionBlock:
        return ConditionBlock(0)

    def spec(self) -> dict[str, Any]:
        """The spec as typed so far; call after ``is_valid()`` (works on partly invalid input too)."""
        rule = getattr(self.rule, "cleaned_data", {}) or {}
        raw = self.rule.data if self.rule.is_bound else {}
        spec: dict[str, Any] = {}
        for name in _TOP_LEVEL:
            if name in rule:
                spec[name] = rule[name]
            elif name in self.rule.fields and self.rule.fields[name].disabled:
                spec[name] = self.rule.initial.get(name)
            elif self.rule.is_bound:
                spec[name] = raw.get(name) or None
        for name in _CHECKBOXES:
            spec[name] = bool(rule.get(name, raw.get(name) in ("on", "true", "1", True)))
        if self.rule.is_bound:
            window, window_unit = self._typed("window", float), self._typed("window_unit", str)
            spec["window_hours"] = None if window is None else round(window * _HOURS_IN.get(window_unit, 1), 6)
            cooldown, cooldown_unit = self._typed("cooldown", int), self._typed("cooldown_unit", str)
            spec["cooldown_days"] = 0 if cooldown is None else cooldown * _DAYS_IN.get(cooldown_unit, 1)
        self._step_forms = _live_forms(self.steps)
        self._condition_forms = _in_blocks(_live_forms(self.conditions))
        self._parameter_forms = _live_forms(self.parameters)
        spec["steps"] = [{"fact_type": _value(f, "fact_type")} for f in self._step_forms]
        spec["conditions"] = [
            {
                "step": step,
                "group": group,
                "field": _value(f, "field"),
                "operator": _value(f, "operator"),
                "value": _value(f, "value") or None,
                "parameter": _value(f, "parameter") or None,
                "negate": bool(_value(f, "negate")),
            }
            for f, step, group in self._condition_forms
        ]
        spec["parameters"] = [
            {
                "name": _value(f, "name") or parameter_name(_value(f, "label") or ""),
                "label": _value(f, "label") or "",
                "kind": _value(f, "kind"),
                "value": _value(f, "value"),
                "unit": _value(f, "unit") or "",
            }
            for f in self._parameter_forms
        ]
        if spec.get("pattern") == SINGLE:
            spec["window_hours"] = None
            spec["count"] = None
        elif spec.get("pattern") == DAYS_PATTERN:
            spec["window_hours"] = None
        labels = placeholder_labels(spec)
        for name in ("message", "summary"):
            if isinstance(spec.get(name), str):
                spec[name] = placeholders_from_chips(spec[name], labels)
        if not self.fixed_key and not spec.get("key"):
            # Made from the name (a key the clinician typed is used as typed, or refused when taken).
            spec["key"] = self._free_key(key_from_name(str(spec.get("name") or "")))
        return spec

    def _free_key(self, key: str) -> str:
        """``key``, or ``key-2``, ``key-3`` … when a rule already has it."""
        if not key:
            return key
        candidate, number = key, 2
        while self.key_taken(candidate):
            candidate, number = f"{key}-{number}", number + 1
        return candidate

    def _typed(self, name: str, kind: type) -> Any:
        """A rule field's cleaned value, else its raw value as ``kind``, else None."""
        cleaned = getattr(self.rule, "cleaned_data", None) or {}
        if name in cleaned:
            return cleaned[name] if cleaned[name] != "" else None
        try:
            value = kind(self.rule.data.get(name))
        except (TypeError, ValueError, OverflowError):
            return None
        return value if value == value else None  # not NaN

    def add_spec_errors(self, errors: Mapping[str, list[str]]) -> None:
        """Put spec validation messages (by field path) on the widgets they belong to."""
        lists = {
            "steps": (self.steps, self._step_forms),
            "conditions": (self.conditions, [form for form, _, _ in self._condition_forms]),
            "parameters": (self.parameters, self._parameter_forms),
        }
        for path, messages in errors.items():
            head, _, rest = path.partition(".")
            if head in lists:
                formset, live = lists[head]
                index, _, field = rest.partition(".")
                if index.isdigit() and int(index) < len(live):
                    form = live[int(index)]
                    shown = field in form.fields and field not in _HIDDEN_CONDITION_FIELDS
                    form.add_error(field if shown else None, list(messages))
                else:
                    formset._non_form_errors = formset.non_form_errors() + list(messages)
            elif head in AMOUNT_FIELDS:
                self.rule.add_error(AMOUNT_FIELDS[head][0], list(messages))
            elif head in self.rule.fields:
                self.rule.add_error(head, list(messages))
            else:
                self.rule.add_error(None, [f"{path}: {m}" for m in messages])

    def add_error(self, message: str) -> None:
        self.rule.add_error(None, message)

    @property
    def has_errors(self) -> bool:
        return bool(self.rule.errors) or any(fs.total_error_count() for fs in self.formsets)


def _posted_parameters(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(name, label) of the parameters in posted editor data, names made from labels where empty."""
    parameters = []
    indexes = {int(m[1]) for m in (re.fullmatch(r"parameters-(\d+)-(?:name|label)", k) for k in data) if m}
    for index in sorted(indexes):
        prefix = f"parameters-{index}-"
        if data.get(f"{prefix}DELETE") in ("on", "true"):
            continue
        label = str(data.get(f"{prefix}label") or "").strip()
        name = str(data.get(f"{prefix}name") or "").strip() or parameter_name(label)
        if name:
            parameters.append((name, label or name))
    return sorted(parameters, key=lambda p: p[1].lower())


def _in_blocks(condition_forms: list) -> list[tuple[forms.Form, int, int]]:
    """Conditions in the spec's order: by event, then block; blocks numbered 1, 2 ... within each
    event (a removed block leaves no gap), so the same rule is always stored the same way."""
    keyed = [(form, _int(_value(form, "step"), 1), _int(_value(form, "group"), 1)) for form in condition_forms]
    keyed.sort(key=lambda item: (item[1], item[2]))  # stable: a block keeps its conditions' order
    numbers: dict[tuple[int, int], int] = {}
    ordered = []
    for form, step, group in keyed:
        if (step, group) not in numbers:
            numbers[(step, group)] = sum(1 for s, _ in numbers if s == step) + 1
        ordered.append((form, step, numbers[(step, group)]))
    return ordered


def _deleted(form: forms.Form) -> bool:
    cleaned = getattr(form, "cleaned_data", None) or {}
    return bool(cleaned.get("DELETE")) or (form.is_bound and form.data.get(form.add_prefix("DELETE")) in ("on", "true"))


def _live_forms(formset: Any) -> list:
    """The formset's forms that are not deleted and not left entirely blank."""
    forms_ = []
    for form in formset.forms:
        if _deleted(form):
            continue
        if form.is_bound and not form.has_changed() and not form.initial:
            if not any(
                form.data.get(form.add_prefix(n))
                for n in form.fields
                if n not in ("DELETE", "step", "group", "kind", "negate")
            ):
                continue
        forms_.append(form)
    return forms_


def _value(form: forms.Form, name: str) -> Any:
    cleaned = getattr(form, "cleaned_data", None)
    if cleaned and name in cleaned:
        return cleaned[name]
    if form.is_bound:
        return form.data.get(form.add_prefix(name))
    return form.initial.get(name)


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


# -- publish, roll back, import ------------------------------------------------------------
class PublishForm(forms.Form):
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 70}),
        help_text="What changed and why; shown in the version history.",
    )
    reason = forms.CharField(
        required=False,
        label="Why it should go live anyway",
        widget=forms.Textarea(attrs={"rows": 3, "cols": 70}),
        help_text="This draft is flagged for the burden it puts on those who get its advice (see above): the "
        "approving clinician reads your reason, and the version keeps it.",
    )

    def __init__(self, *args: Any, needs_reason: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if needs_reason:
            self.fields["reason"].required = True
            self.fields["reason"].error_messages["required"] = "Say why this flagged draft should go live anyway."
        else:
            del self.fields["reason"]


class RequestDecisionForm(forms.Form):
    comment = forms.CharField(
        required=False,
        label="Your comment",
        widget=forms.Textarea(attrs={"rows": 2, "cols": 70}),
        help_text="Optional: what you checked, kept with your approval.",
    )


class RollbackForm(forms.Form):
    version = forms.TypedChoiceField(coerce=int, label="Version to restore")
    comment = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 70}),
        help_text="Why; shown in the version history.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        live = RulesetVersion.objects.order_by("-number").values_list("number", flat=True).first()
        self.fields["version"].choices = [
            (
                v.number,
                f"Version {v.number} — {date_format(timezone.localtime(v.created_at), 'DATETIME_FORMAT')}"
                f" — {v.comment[:80]}",
            )
            for v in RulesetVersion.objects.order_by("-number").only("number", "created_at", "comment")
            if v.number != live
        ]


class ImportForm(forms.Form):
    pack = forms.FileField(required=False, label="Rule pack file (.json)")
    pack_text = forms.CharField(required=False, widget=forms.HiddenInput)


class RulesetSettingsForm(forms.Form):
    """The ruleset's own settings (rules.spec.RULESET_SETTINGS), saved to the draft."""

    advice_limit = forms.IntegerField(
        label=RULESET_SETTINGS["advice_limit"][0],
        help_text=format_lazy(
            "An event gives at most this many pieces of advice (1 to {}): the most urgent first, then by "
            "the rules' priority. The rest is held back and shown as such in try it and simulation.",
            ADVICE_LIMIT_MAX,
        ),
        widget=forms.NumberInput(attrs={"class": "rules-number-short", "min": 1, "max": ADVICE_LIMIT_MAX}),
    )


class SimulateForm(forms.Form):
    days = forms.IntegerField(min_value=1, max_value=365, initial=30, label="Stored events of the last (days)")


# -- try it --------------------------------------------------------------------------------
def _try_field(spec: FieldSpec) -> forms.Field:
    label = spec.label + (f" ({spec.unit})" if spec.unit else "")
    described = spec.describe_range()
    help_text = spec.help_text or (("One of " if spec.choices else "Range ") + described if described else "")
    if spec.kind == BOOLEAN:
        return forms.TypedChoiceField(
            label=label,
            required=False,
            coerce=lambda v: v == "true",
            empty_value=None,
            choices=[("", "not recorded"), ("true", "yes"), ("false", "no")],
            help_text=help_text,
        )
    if spec.kind == TEXT and spec.choices:
        return forms.ChoiceField(
            label=label,
            required=False,
            choices=[("", "not recorded")] + [(c, spec.choice_label(c)) for c in spec.choices],
            help_text=help_text,
        )
    if spec.kind == TEXT:
        return forms.CharField(label=label, required=False, help_text=help_text)
    if spec.kind == DATE:
        return forms.DateField(
            label=label, required=False, help_text=help_text, widget=forms.DateInput(attrs={"type": "date"})
        )
    field_class = forms.IntegerField if spec.kind == INTEGER else forms.FloatField
    attrs = {"class": "rules-number-wide"}
    if spec.kind == NUMBER:
        attrs["step"] = "any"
    return field_class(
        label=label,
        required=False,
        min_value=spec.minimum,
        max_value=spec.maximum,
        help_text=help_text,
        widget=forms.NumberInput(attrs=attrs),
    )


def _offset_words(minutes: int) -> str:
    if not minutes:
        return "UTC"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{'+' if minutes > 0 else '−'}{hours:02d}:{rest:02d}"


# The offsets an event may be sent with: every half hour from UTC−12:00 to UTC+14:00, and the
# quarter hours some places keep.
OFFSET_MINUTES = sorted({*range(-12 * 60, 14 * 60 + 1, 30), 345, 525, 765})
OFFSET_CHOICES = [(minutes, _offset_words(minutes)) for minutes in OFFSET_MINUTES]


class TryForm(forms.Form):
    """An event of one type, built from the catalog, with an optional real subject for history.
    Its moment is a local date and time with the offset the event is sent with (the subject's
    local time, as their events are shown everywhere)."""

    fact_type = forms.ChoiceField(label="Event type")
    occurred_at = forms.DateTimeField(
        label="When",
        help_text=format_lazy("In the {}'s own local time, with the time zone next to it.", _subject()),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    offset = forms.TypedChoiceField(label="Time zone", coerce=int, choices=OFFSET_CHOICES, required=False)
    subject = forms.ChoiceField(label="History of", required=False)
    scope = forms.ChoiceField(choices=[("draft", "The whole draft"), ("rule", "Only this rule")], required=False)
    # The stored event this one stands for ("Try this event"): left out of the history it joins.
    replacing = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(
        self, *args: Any, fact_type: str, subjects: list[tuple[str, str]], rule_name: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["fact_type"].choices = [(ft.name, ft.label) for ft in registry.fact_types()]
        now = timezone.localtime().replace(second=0, microsecond=0)
        self.fields["occurred_at"].initial = now.replace(tzinfo=None)
        self.fields["offset"].initial = int((now.utcoffset() or dt.timedelta(0)).total_seconds() // 60)
        self.fields["subject"].choices = [("", "nobody (no history)")] + list(subjects)
        if not rule_name:
            del self.fields["scope"]
        else:
            self.fields["scope"].choices = [("rule", f"Only this rule (“{rule_name}”)"), ("draft", "The whole draft")]
        self.fact_type = registry.fact_type(fact_type)
        self.data_fields: list[str] = []
        if self.fact_type:
            for spec in self.fact_type.fields.values():
                if spec.derived:
                    continue
                self.fields[f"data_{spec.name}"] = _try_field(spec)
                self.data_fields.append(f"data_{spec.name}")
            for spec in self.fact_type.fields.values():
                if spec.required:
                    self.fields[f"data_{spec.name}"].required = True

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        at, offset = cleaned.get("occurred_at"), cleaned.get("offset")
        if at is not None and offset not in (None, ""):
            # Typed as the subject's local time: the same wall-clock time, in the chosen offset.
            cleaned["occurred_at"] = timezone.make_naive(at).replace(tzinfo=dt.timezone(dt.timedelta(minutes=offset)))
        return cleaned

    def event_data(self) -> dict[str, Any]:
        data = {}
        for name in self.data_fields:
            value = self.cleaned_data.get(name)
            if value is None or value == "":
                continue
            if isinstance(value, dt.date):
                value = value.isoformat()
            data[name[len("data_") :]] = value
        return data

    def data_bound_fields(self) -> list:
        return [self[name] for name in self.data_fields]


__all__ = [
    "KIND_LABELS",
    "ImportForm",
    "PublishForm",
    "RequestDecisionForm",
    "RollbackForm",
    "RuleEditor",
    "RulesetSettingsForm",
    "SimulateForm",
    "TryForm",
    "catalog_json",
]
