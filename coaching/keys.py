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
