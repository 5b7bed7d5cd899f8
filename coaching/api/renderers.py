"""The API's JSON: DRF's JSON renderer, written by orjson where that gives the same JSON.

An array's answer is large, and orjson writes it several times faster than DRF's renderer (the
``json`` module with DRF's encoder). orjson writes what DRF writes for the API's plain data:
compact, UTF-8 as it is (DRF's ``UNICODE_JSON``), U+2028 and U+2029 escaped as DRF escapes
them. Anything else goes to DRF's renderer:
indentation asked for, moments, dates and times (DRF's encoder writes them its own way),
decimals, lazy text, integers beyond 64 bits.
"""

from __future__ import annotations

from typing import Any

import orjson
from rest_framework import renderers

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _refuse(value: Any) -> Any:
    raise TypeError(type(value).__name__)


class JSONRenderer(renderers.JSONRenderer):
    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: dict | None = None) -> bytes:
        if (
            data is None
            or self.ensure_ascii
            or not self.compact
            or self.get_indent(accepted_media_type or "", renderer_context or {}) is not None
        ):
            return super().render(data, accepted_media_type, renderer_context)
        try:
            text = orjson.dumps(data, default=_refuse, option=_OPTIONS)
        except TypeError:  # orjson.JSONEncodeError
            return super().render(data, accepted_media_type, renderer_context)
        # As DRF: escaped, so that the JSON is a valid JavaScript literal too.
        return text.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
