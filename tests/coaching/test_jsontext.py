"""The hot path's JSON (``coaching.internal.db.jsontext``, by orjson) gives exactly the values the ``json``
module gives: integers beyond 64 bits stay exact integers, every float keeps its bits, text of
any plane (and lone surrogates, which only ``json`` can write) survives, nested to any depth;
and a JSONField read through a prepared query gives what the ORM gives."""

from __future__ import annotations

import json
import math
import random
import struct

import pytest

from coaching.internal.db.jsontext import json_field_loader, json_text, json_value
from coaching.models import Event

TEXTS = [
    "",
    "plain",
    'quote " backslash \\ slash /',
    "tab\tnewline\n",
    "“curly” ümlaut 🏃 𝄞",
    "\u2028\u2029",
    "\x7f\x1f",
]


def same(a, b) -> bool:
    """Equal values of equal types all the way down (1 is not 1.0, -0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    return a == b


def scalar(rng: random.Random):
    kind = rng.randrange(9)
    if kind == 0:
        return rng.randint(-(2**63), 2**63 - 1)
    if kind == 1:
        return rng.choice([2**63, 2**64, -(2**63) - 1, 10**19, 10**30, -(10**40), 10**300])
    if kind == 2:
        while True:  # any finite float, by its bits
            value = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
            if math.isfinite(value):
                return value
    if kind == 3:
        return rng.choice([0.0, -0.0, 0.1 + 0.2, 1e-7, 1e16, 1e22, 5e-324, 1.7976931348623157e308, 3.03, 10.0])
    if kind == 4:
        return rng.choice(TEXTS) + str(rng.random())
    if kind == 5:
        return "".join(chr(rng.choice([rng.randrange(32, 0xD800), rng.randrange(0xE000, 0x110000)])) for _ in range(8))
    if kind == 6:
        return rng.choice([True, False, None])
    if kind == 7:
        return f"id {rng.randrange(10**25)}"  # long runs of digits inside text
    return rng.randrange(100)


def value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(4) if depth < 4 else 0
    if kind == 0:
        return scalar(rng)
    if kind == 1:
        return [value(rng, depth + 1) for _ in range(rng.randrange(5))]
    return {rng.choice(TEXTS) + str(n): value(rng, depth + 1) for n in range(rng.randrange(5))}


@pytest.mark.parametrize("seed", range(40))
def test_written_and_read_as_the_json_module_does(seed):
    rng = random.Random(seed)
    for _ in range(50):
        original = value(rng)
        text = json.dumps(original)
        assert same(json.loads(json_text(original)), json.loads(text))
        assert same(json_value(text), json.loads(text))
        compact = json.dumps(original, separators=(",", ":"), ensure_ascii=False)
        assert same(json_value(compact), json.loads(compact))


def test_what_only_the_json_module_writes_is_written_by_it():
    lone = {"note": "half of a pair \ud83c", "big": 10**40}
    assert json_text(lone) == json.dumps(lone, separators=(",", ":"))
    assert same(json.loads(json_text(lone)), lone)


def test_a_json_field_reads_as_django_reads_it():
    field = Event._meta.get_field("data")
    fast = json_field_loader(field)
    assert fast is not None
    for text in ['{"distance_km": 5.0, "n": 12345678901234567890123}', "[1, 2.5, null]", '"text"', "null"]:
        assert same(fast(text, None, None), field.from_db_value(text, None, None))
    assert fast(None, None, None) is None
    assert fast("not JSON", None, None) == field.from_db_value("not JSON", None, None) == "not JSON"
    assert json_field_loader(Event._meta.get_field("external_id")) is None
