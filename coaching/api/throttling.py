"""Request limits per gym (rate from ``REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']['gym']``)."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from ..models import Gym


class GymRateThrottle(SimpleRateThrottle):
    scope = "gym"

    def get_rate(self) -> str | None:
        # Read at request time, not import time, so a changed setting takes effect.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not isinstance(request.auth, Gym):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
