"""A small client of the gym API, with the standard library only.

    from client import Client
    api = Client("https://rules.example.org", key="rlbp_...")
    answer = api.post_events([{"external_id": "garmin-1", "member": "m-1", "type": "run",
                               "occurred_at": "2026-11-20T07:30:00+01:00",
                               "data": {"distance_km": 5, "duration_min": 30}}])
    for change in api.follow_changes():       # every creation and withdrawal, oldest first
        ...
    api.watermark                             # pass it next time: nothing missed, nothing twice

Webhook deliveries are verified with ``verify_webhook(secret, headers, body)``: the Standard
Webhooks signature (HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>" with the
endpoint's secret), the timestamp within five minutes, any of the space-separated signatures
(a rotated secret signs beside the new one for a day).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

TOLERANCE_SECONDS = 5 * 60


class ApiError(Exception):
    """An answer other than 2xx: its status and its JSON body."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status, self.body = status, body


class Client:
    def __init__(self, base_url: str, *, key: str, timeout: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.timeout = timeout
        self.watermark: str | None = None

    def request(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        url = self.base_url + path
        query = {name: value for name, value in params.items() if value is not None}
        if query:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.key}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        for attempt in range(5):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    raw = response.read()
                    return json.loads(raw) if raw else None
            except urllib.error.HTTPError as error:
                raw = error.read()
                if error.code in (429, 503) and attempt < 4:  # wait as told, then send the same again
                    time.sleep(float(error.headers.get("Retry-After") or 1))
                    continue
                raise ApiError(error.code, json.loads(raw) if raw else None) from None
        raise AssertionError("unreachable")

    # -- events and advice ------------------------------------------------------------------------
    def post_event(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Send one event; its stored form with its advice (a repeat answers the same)."""
        return self.request("POST", "/api/v1/events/", dict(event))

    def post_events(self, events: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Send up to 500 events at once; one item per event, in order."""
        return self.request("POST", "/api/v1/events/", [dict(event) for event in events])

    def member_advice(self, member: str, *, active: bool = False) -> list[dict[str, Any]]:
        """A member's current advice (``active``: only what to show now), every page."""
        path = f"/api/v1/members/{urllib.parse.quote(member, safe='')}/advice/"
        return list(self._pages(path, active="true" if active else None))

    def members(self, *, under_referral: bool | None = None) -> list[dict[str, Any]]:
        flag = None if under_referral is None else ("true" if under_referral else "false")
        return list(self._pages("/api/v1/members/", under_referral=flag))

    def follow_changes(self, since: str | None = None) -> Iterator[dict[str, Any]]:
        """Every piece of advice created or withdrawn after the watermark (``since``, else the
        last one this client got), oldest change first; ``watermark`` then says where it ended."""
        mark = since or self.watermark or "1970-01-01T00:00:00Z"
        while True:
            page = self.request("GET", "/api/v1/advice/", changed_since=mark)
            yield from page["results"]
            mark = page["next_changed_since"]
            self.watermark = mark
            if not page["results"]:
                return

    def feedback(self, advice_id: int, outcome: str, reasons: list[str] | None = None) -> Any:
        """Tell how a piece of advice landed: ``accepted`` or ``overridden`` (with reason codes)."""
        body = {"outcome": outcome, "override_reasons": reasons or []}
        return self.request("POST", f"/api/v1/advice/{advice_id}/feedback/", body)

    def _pages(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        page = self.request("GET", path, **params)
        while True:
            yield from page["results"]
            if not page.get("next"):
                return
            page = self.request("GET", page["next"].removeprefix(self.base_url))


def verify_webhook(secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> Any:
    """The delivery's JSON when its signature and timestamp hold; raises ``ValueError`` otherwise."""
    headers = {name.lower(): value for name, value in headers.items()}
    msg_id, stamp, signatures = (headers.get(n) for n in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not (msg_id and stamp and signatures):
        raise ValueError("missing webhook headers")
    if abs((now if now is not None else time.time()) - int(stamp)) > TOLERANCE_SECONDS:
        raise ValueError("webhook timestamp too old or too new")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest())
    if not any(
        hmac.compare_digest(expected, sig.split(",", 1)[1].encode()) for sig in signatures.split() if "," in sig
    ):
        raise ValueError("no matching webhook signature")
    return json.loads(body)
