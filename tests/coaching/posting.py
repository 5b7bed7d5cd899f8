"""A gym's client in a process of its own, for the concurrency test: posts its events over HTTP.

Only the standard library, so that a spawned process starts quickly and never touches the
test's database connection.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def events_post(url: str, key: str, payloads: list[dict[str, Any]], start: Any, answers: Any) -> None:
    """Wait for ``start`` (a barrier all the clients share), then post each payload on its own
    and put ``(external_id, status)`` for each on the ``answers`` queue."""
    start.wait(timeout=120)
    for payload in payloads:
        request = urllib.request.Request(
            f"{url}/api/v1/events/",
            data=json.dumps(payload).encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        answers.put((payload["external_id"], status))
