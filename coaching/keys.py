"""Gyms' API keys: 256-bit random tokens, stored only as a hash."""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "rlbp_"


def key_hash(key: str) -> str:
    """Keys are 256-bit random tokens, so a plain SHA-256 is enough (no slow KDF needed)."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_new() -> tuple[str, str, str]:
    """A new key, its hash and the start of it people recognise it by."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, key_hash(key), key[: len(KEY_PREFIX) + 6]


# What a key may do: scope -> what it allows, in the words of a 403's "which ... needs".
SCOPES: dict[str, str] = {
    "events:write": "sending events",
    "advice:read": "reading members, events, advice and CDS Hooks cards",
    "members:erase": "erasing a member",
    "webhooks:manage": "managing webhooks",
}
ALL_SCOPES = tuple(SCOPES)
MSG_SCOPES_UNKNOWN = "Unknown scope “{scope}”. Choose from: {choices}."


def scopes_parse(text: str | list[str]) -> list[str]:
    """Scopes given as "a,b" or a list, checked and in their canonical order; raises ValueError."""
    given = [part.strip() for part in (text.split(",") if isinstance(text, str) else text) if part.strip()]
    for scope in given:
        if scope not in SCOPES:
            raise ValueError(MSG_SCOPES_UNKNOWN.format(scope=scope, choices=", ".join(SCOPES)))
    if not given:
        raise ValueError(MSG_SCOPES_UNKNOWN.format(scope="", choices=", ".join(SCOPES)))
    return [scope for scope in SCOPES if scope in given]
