"""The default rule pack (docs/rulepack.md): rule-pack JSON files in ``coaching/rulepacks/``.

The files are in the export format and are read by the same parser as a clinician's import
(``rules.packs.pack_read``), so the shipped pack passes exactly the validation an import does.
A fresh install gets the latest version. Earlier versions stay, unchanged, so that an upgrade
can tell a rule nobody touched since it was installed from one a clinician changed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rules.packs import Pack, pack_read
from rules.spec import spec_normalize

PACK_DIR = Path(__file__).resolve().parent / "rulepacks"
PACK_FILES: dict[int, Path] = {
    1: PACK_DIR / "default-v1.json",
    2: PACK_DIR / "default-v2.json",
    3: PACK_DIR / "default-v3.json",
}
LATEST = max(PACK_FILES)
# The safety-critical rules: never switched off, deleted or made less urgent, whatever a
# clinician edits or a pack holds (rules.registry.Registry.register_safety_critical).
SAFETY_CRITICAL = (
    "red-flags-emergency",
    "red-flags-urgent",
    "red-flags",
    "severe-pain-refer",
    "running-under-referral",
)


def rulepack(version: int = LATEST) -> Pack:
    """Version ``version`` of the default pack, validated and normalized (an earlier version
    without the safety-critical checks: it is only compared with, never installed)."""
    return pack_read(PACK_FILES[version].read_bytes(), safety=version == LATEST)


def rulepack_specs(version: int = LATEST) -> list[dict[str, Any]]:
    """The rule specs of version ``version`` of the default pack."""
    return rulepack(version).rules


def safety_critical_specs() -> list[dict[str, Any]]:
    """The safety-critical rules as the latest pack ships them. Read from the file as it is, not
    through ``pack_read``, whose validation itself asks for these."""
    rules = json.loads(PACK_FILES[LATEST].read_bytes())["rules"]
    return [spec_normalize(spec) for spec in rules if spec["key"] in SAFETY_CRITICAL]
