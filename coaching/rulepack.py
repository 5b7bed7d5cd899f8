"""The default rule pack (RULES.md): rule-pack JSON files in ``coaching/rulepacks/``.

The files are in the export format and are read by the same parser as a clinician's import
(``rules.packs.pack_read``), so the shipped pack passes exactly the validation an import does.
A fresh install gets the latest version. Earlier versions stay, unchanged, so that an upgrade
can tell a rule nobody touched since it was installed from one a clinician changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rules.packs import Pack, pack_read

PACK_DIR = Path(__file__).resolve().parent / "rulepacks"
PACK_FILES: dict[int, Path] = {
    1: PACK_DIR / "default-v1.json",
    2: PACK_DIR / "default-v2.json",
}
LATEST = max(PACK_FILES)


def rulepack(version: int = LATEST) -> Pack:
    """Version ``version`` of the default pack, validated and normalized."""
    return pack_read(PACK_FILES[version].read_bytes())


def rulepack_specs(version: int = LATEST) -> list[dict[str, Any]]:
    """The rule specs of version ``version`` of the default pack."""
    return rulepack(version).rules
