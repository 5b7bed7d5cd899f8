"""The examples the OpenAPI document shows: requests and answers of the running product.

``examples.json`` beside this module is written by the suite from a gym's day played through the
API (``make examples``) and checked against it on every run, so an example never goes stale.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from django.utils.text import slugify

EXAMPLES_PATH = Path(__file__).with_name("examples.json")


def operation_key(method: str, path: str) -> str:
    return f"{method.upper()} {path}"


@cache
def examples_load() -> dict[str, Any]:
    return json.loads(EXAMPLES_PATH.read_text()) if EXAMPLES_PATH.exists() else {}


def _named(examples: dict[str, Any]) -> dict[str, Any]:
    return {slugify(name): {"summary": name, "value": value} for name, value in examples.items()}


def examples_attach(result: dict[str, Any]) -> None:
    """Put each operation's examples on its request body, its answers and its query parameters."""
    examples = examples_load()
    for path, operations in result["paths"].items():
        for method, operation in operations.items():
            found = examples.get(operation_key(method, path))
            if not found:
                continue
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None and found.get("requests"):
                body["examples"] = _named(found["requests"])
            for code, answers in found.get("responses", {}).items():
                response = operation.get("responses", {}).get(code)
                content = response.get("content", {}).get("application/json") if response else None
                if content is not None:
                    content["examples"] = _named(answers)
            for name, query in found.get("queries", {}).items():
                for parameter_name, value in parse_qsl(query):
                    for parameter in operation.get("parameters", []):
                        if parameter["in"] == "query" and parameter["name"] == parameter_name:
                            parameter.setdefault("examples", {})[slugify(name)] = {"summary": name, "value": value}
