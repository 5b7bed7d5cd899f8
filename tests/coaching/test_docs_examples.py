"""The examples in the README and docs/api.md are what the running product answers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .conftest import DOCS_RUN

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def json_blocks(path: Path) -> list[dict]:
    blocks = []
    for text in re.findall(r"```json\n(.*?)```", path.read_text(), re.S):
        try:
            blocks.append(json.loads(text))
        except ValueError:
            continue  # fragments such as a single field
    return blocks


def subset(shown, real) -> bool:
    """Whether an abridged example says only what the real answer says ("...": anything; ids are
    the database's own)."""
    if isinstance(shown, dict):
        return isinstance(real, dict) and all(
            k in ("...", "id") or (k in real and subset(v, real[k])) for k, v in shown.items()
        )
    if isinstance(shown, list):
        return isinstance(real, list) and len(shown) == len(real) and all(map(subset, shown, real))
    if isinstance(shown, str) and isinstance(real, str) and shown.endswith("..."):
        return real.startswith(shown[:-3].rstrip(". "))
    return shown == real or shown == "..."


def test_the_readmes_example_answer_is_the_products(client, pack):
    answer = client.send(DOCS_RUN, expect=201).json()
    [example] = [block for block in json_blocks(ROOT / "README.md") if block.get("external_id") == "garmin-88231"]
    assert subset(example, answer), (example, answer)


def test_the_api_references_advice_example_is_the_products(client, pack):
    answer = client.send(DOCS_RUN, expect=201).json()
    real = next(a for a in answer["advice"] if a["rule"]["key"] == "pain-stop")
    [example] = [b for b in json_blocks(ROOT / "docs" / "api.md") if b.get("rule", {}).get("key") == "pain-stop"]
    for field in ("rule", "category", "severity", "message", "matched_events", "source"):
        assert example[field] == real[field], field
    for field in ("summary", "indicator", "source"):
        assert example["card"][field] == real["card"][field], field
