"""docs/rulepack.md is the default rule pack in words, made from the pack file itself.

``rulepack_page`` writes the page from the latest pack with the admin's own sentences and the
product's words; the test compares it with docs/rulepack.md, so a change of the pack that the
page does not show fails here. ``make rulepack-doc`` (``RULEPACK_DOC_WRITE=1``) writes the page
anew; without it the test only reads.
"""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from coaching.catalog import EVENT_PAIN_FIGURES, SEVERITY_CODES
from coaching.rulepack import LATEST, PACK_FILES, SAFETY_CRITICAL, rulepack
from coaching.words import FIGURE_SPECS, category_words, count_words, lower_first, severity_words, unit_words
from rules.admin.describe import message_named, spec_when
from rules.internal.render import placeholders
from rules.registry import FieldSpec, registry, state_fields

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "rulepack.md"
PACK_PATH = PACK_FILES[LATEST].relative_to(ROOT).as_posix()
WIDTH = 95
# Links and code spans stay on one line: tests/test_docs.py reads links line by line.
UNBROKEN = re.compile(r"\[[^\]]*\]\([^)]*\)|`[^`]*`")
# A line that Markdown would read as a list item, a heading or a quote.
BLOCK_START = re.compile(r"^(\d+[.)]|[-+*#>])(\s|$)")


def wrapped(text: str, *, item: bool = False) -> list[str]:
    """A paragraph (with ``item``: a list item) in lines of at most ``WIDTH`` characters."""
    kept = UNBROKEN.sub(lambda match: match.group(0).replace(" ", "\x00"), text)
    lines = textwrap.wrap(
        kept,
        WIDTH,
        initial_indent="- " if item else "",
        subsequent_indent="  " if item else "",
        break_long_words=False,
        break_on_hyphens=False,
    )
    lines = [line.replace("\x00", " ") for line in lines]
    assert not any(BLOCK_START.match(line.strip()) for line in lines[1:]), lines
    return lines


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def _ordered(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Most urgent first, then by priority and key: the order advice is listed in."""
    return sorted(rules, key=lambda spec: (SEVERITY_CODES.index(spec["severity"]), spec["priority"], spec["key"]))


def _figures_used(rules: list[dict[str, Any]]) -> list[FieldSpec]:
    """The derived figures and state fields the rules test or put in words, in the catalog's order."""
    used = set()
    for spec in rules:
        used |= {condition["field"] for condition in spec["conditions"]}
        used |= set(placeholders(spec["message"])) | set(placeholders(spec["summary"]))
    figures = [*EVENT_PAIN_FIGURES, *FIGURE_SPECS.values(), *state_fields()]
    return [figure for figure in figures if figure.name in used]


def _rule_entry(spec: Mapping[str, Any]) -> list[str]:
    key = spec["key"]
    subject = registry.subject()[0]
    lines = [
        f'### <a id="{key}"></a>{spec["name"]} <small>`{key}`</small>',
        "",
        f"Severity: {severity_words(spec['severity'])}. Category: {category_words(spec['category'])}.",
        "",
    ]
    if spec["description"]:
        lines += [*wrapped(spec["description"]), ""]
    items = [f"**Fires** {lower_first(spec_when(spec))}.", f"**Says** “{message_named(spec)}”"]
    if spec["summary"]:
        items.append(f"**In short** “{message_named(spec, spec['summary'])}”")
    if spec["parameters"]:
        numbers = "; ".join(f"{p['label'].lower()}: {unit_words(p['value'], p['unit'])}" for p in spec["parameters"])
        items.append(f"**Numbers to tune**: {numbers}")
    cooldown = spec["cooldown_days"]
    items += [
        f"**Cooldown**: {count_words(cooldown, 'day') if cooldown else 'none'}",
        f"**Shown for**: {count_words(spec['display_days'], 'day') if spec['display_days'] else 'until withdrawn'}",
        f"**Holds back lower advice**: {_yes_no(spec['holds_back_lower'])}",
        f"**Refers the {subject}**: {_yes_no(spec['refers'])}",
    ]
    if spec["follows_referral"]:
        items.append("**As urgent as the referral in force**: yes")
    if spec["indicator"]:
        default = registry.indicator_defaults().get(spec["severity"], "")
        items.append(f"**Card indicator**: `{spec['indicator']}`, where the severity's is `{default}`")
    if not spec["enabled"]:
        items.append("**Switched off** as shipped")
    items += [
        f"**Safety-critical**: {_yes_no(key in SAFETY_CRITICAL)}",
        f"**Source**: {spec['source_label']}",
    ]
    return [*lines, *(line for item in items for line in wrapped(item, item=True)), ""]


def rulepack_page() -> str:
    """docs/rulepack.md as the latest pack makes it."""
    pack = rulepack()
    rules = _ordered(pack.rules)
    subject = registry.subject()[0]
    lines = ["# The default rule pack", ""]
    paragraphs = [
        f"Version {LATEST} of the default rule pack, in words: the {len(rules)} rules that `python manage.py "
        "installpack` installs and publishes on a fresh install (`make run` and `make serve` call it). "
        "Clinicians own these rules: in the admin they change any number, wording, cooldown or priority, "
        "and switch off or delete any rule that is not safety-critical "
        "([The admin for clinicians](clinicians.md)), so a running product may differ from this page; "
        "the page of each published version in the admin (Rules → Ruleset versions) lists its rules in "
        "sentences like the ones below. How the advice of the rules that fire becomes what a "
        f"{subject} is told (cooldowns, precedence, referral, at most "
        f"{count_words(pack.settings['advice_limit'], 'piece')} of advice per event) is in "
        "[How advice is decided](advice.md).",
        f"This page is made from `{PACK_PATH}`: `make rulepack-doc` writes it anew after the pack changes.",
    ]
    for paragraph in paragraphs:
        lines += [*wrapped(paragraph), ""]
    lines += ["## Reading an entry", ""]
    guide = [
        "The heading is the rule's name, with its key beside it (advice names its rule by the key, in "
        f"the API and in the admin). Under it: its severity (what the {subject} is told to do), its "
        "category, and what it looks for in a sentence.",
        "**Fires**: its conditions, with the numbers the pack ships. “Or” joins alternatives, of which "
        "one is enough; “and” joins conditions that must all hold. A rule about several events fires "
        "on the event that completes them, within the time given.",
        f"**Says**: the message the {subject} reads, and **in short** its summary (what a clinical "
        f"system shows on the advice's card). Words in square brackets stand for what the {subject}'s "
        "events supply, filled in with their own values when the advice is given: “[pain]/10” reads "
        "“7/10”.",
        "**Numbers to tune**: the rule's parameters, as the admin's editor labels them.",
        f"**Cooldown**: no new advice from the rule for a {subject} within that many days of its last "
        f"advice to them. **Shown for**: how long after its event the advice stays among what to show the "
        f"{subject} now (the API's `?active=true`). **Holds back lower advice**: when it fires, less "
        f"urgent advice on the same event is not given. **Refers the {subject}**: when it fires, the "
        f"{subject} is under referral and gets only advice to stop running, or more urgent, until cleared "
        "([The decision policy](advice.md#the-decision-policy), [Referral](advice.md#referral)).",
        "**Safety-critical**: it cannot be switched off, deleted or made less urgent, and what it looks "
        "for is fixed ([Safety-critical rules](advice.md#safety-critical-rules)).",
        "**Source**: the section of the article on running with lower back pain that the advice "
        "comes from, or “Beyond the article” with the clinical guidance it follows instead.",
    ]
    for item in guide:
        lines += wrapped(item, item=True)
    lines += [
        "",
        "## All rules, most urgent first",
        "",
        "| severity | rule | category | cooldown | safety-critical |",
        "|---|---|---|---|---|",
    ]
    for spec in rules:
        cooldown = count_words(spec["cooldown_days"], "day") if spec["cooldown_days"] else "none"
        lines.append(
            f"| {severity_words(spec['severity'])} | [{spec['name']}](#{spec['key']}) | "
            f"{category_words(spec['category'])} | {cooldown} | {_yes_no(spec['key'] in SAFETY_CRITICAL)} |"
        )
    lines.append("")
    for severity in SEVERITY_CODES:
        tier = [spec for spec in rules if spec["severity"] == severity]
        if tier:
            lines += [f"## {severity_words(severity)} (`{severity}`)", ""]
            for spec in tier:
                lines += _rule_entry(spec)
    lines += ["## The figures these rules use", ""]
    lines += wrapped(
        "Besides the fields of the event judged ([Event types and their "
        "fields](api.md#event-types-and-their-fields)), the rules look at figures worked out from the "
        f"{subject}'s history as of that event ([Derived figures](api.md#derived-figures)):"
    )
    lines.append("")
    for figure in _figures_used(rules):
        unit = {"": "", "/10": ", out of 10"}.get(figure.unit, f", in {figure.unit}")
        help_text = f": {figure.help_text}" if figure.help_text else ""
        lines += wrapped(f"**{figure.label}**{unit}{help_text}", item=True)
    return "\n".join(lines) + "\n"


def test_the_page_shows_the_pack_as_it_is():
    page = rulepack_page()
    if os.environ.get("RULEPACK_DOC_WRITE"):
        PAGE.write_text(page, encoding="utf-8")
    assert PAGE.read_text(encoding="utf-8") == page, "the pack changed: run `make rulepack-doc` and review the page"


def test_every_rule_has_an_entry_and_no_placeholder_is_left():
    page = rulepack_page()
    for spec in rulepack().rules:
        assert f'<a id="{spec["key"]}"></a>{spec["name"]}' in page
    assert "{" not in page and "}" not in page
