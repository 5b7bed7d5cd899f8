"""Gym API keys: ``Authorization: Bearer <key>`` identifies the gym (tenant) of a request."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from ..keys import SCOPES
from ..models import Gym, GymKey
from ..selectors import gym_for_key

KEY_INVALID = "The API key is not valid. Check it, or ask for a new one if it was rotated."
HEADER_INVALID = "Send the key as 'Authorization: Bearer <gym API key>'."


class GymPrincipal:
    """Stands in for ``request.user`` on gym calls (the gym and the key used); the gym itself is
    ``request.auth``."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False

    def __init__(self, gym: Gym, key: GymKey | None = None) -> None:
        self.gym = gym
        self.key = key
        self.pk = None

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.key.scopes) if self.key is not None else frozenset()

    def __str__(self) -> str:
        return f"gym:{self.gym.name}"


class GymKeyAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[GymPrincipal, Gym] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(HEADER_INVALID)
        try:
            key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(KEY_INVALID) from None
        found = gym_for_key(key=key)
        if found is None:
            raise exceptions.AuthenticationFailed(KEY_INVALID)
        gym, gym_key = found
        return GymPrincipal(gym, gym_key), gym

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class IsGym(BasePermission):
    message = "Send your gym's API key: 'Authorization: Bearer <gym API key>'."

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, Gym)


MSG_SCOPE_MISSING = (
    "This API key lacks the scope “{scope}”, which {what} needs. Use a key with it, or ask the "
    "product's operator for one (manage.py gymkey)."
)


def scope_required(request: Request, view: Any) -> str | None:
    """The scope a request needs: the view's ``scopes`` by method (``"*"``: any method)."""
    scopes = getattr(view, "scopes", {})
    return scopes.get(request.method, scopes.get("*"))


class HasScope(BasePermission):
    """The key used may do what the request asks (the view's ``scopes``); 403 names the scope."""

    def has_permission(self, request: Request, view: Any) -> bool:
        scope = scope_required(request, view)
        if scope is None or not isinstance(request.user, GymPrincipal):
            return True
        if scope in request.user.scopes:
            return True
        raise exceptions.PermissionDenied(MSG_SCOPE_MISSING.format(scope=scope, what=SCOPES[scope]))


class GymKeyScheme(OpenApiAuthenticationExtension):
    target_class = GymKeyAuthentication
    name = "GymKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "The gym's API key."}
