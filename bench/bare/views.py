"""Authenticate, validate, insert, answer: nothing else (see the package docstring)."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from rest_framework import status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from coaching.api.authentication import GymKeyAuthentication, IsGym
from coaching.api.parsers import LimitedJSONParser
from coaching.evaluation import event_build
from coaching.models import Gym, Member
from coaching.services import event_content_hash
from coaching.validation import event_validate

MAX_BATCH = 500


def event_insert(*, gym: Gym, payload: Any) -> tuple[int, dict[str, Any]]:
    """(201, the stored row's ids), (200, ...) when the external id is stored already, or (400, errors)."""
    clean, errors = event_validate(payload)
    if errors or clean is None:
        return status.HTTP_400_BAD_REQUEST, {"errors": errors}
    try:
        with transaction.atomic():
            member, _ = Member.objects.get_or_create(gym=gym, external_id=clean.member)
            event = event_build(gym=gym, member=member, clean=clean, content_hash=event_content_hash(clean))
            event.save(force_insert=True)
    except IntegrityError:
        return status.HTTP_200_OK, {"external_id": clean.external_id}
    return status.HTTP_201_CREATED, {"id": event.pk, "external_id": event.external_id}


class BareEventsView(APIView):
    authentication_classes = [GymKeyAuthentication]
    permission_classes = [IsGym]
    throttle_classes: list[type] = []
    parser_classes = [LimitedJSONParser]
    renderer_classes = [JSONRenderer]

    def post(self, request: Request) -> Response:
        body = request.data
        if isinstance(body, list):
            if len(body) > MAX_BATCH:
                return Response({"errors": {"non_field_errors": ["too many"]}}, status=status.HTTP_400_BAD_REQUEST)
            answers = []
            for payload in body:  # row by row, one transaction each
                code, answer = event_insert(gym=request.auth, payload=payload)
                answers.append({"status": code, "event": answer})
            return Response(answers, status=status.HTTP_200_OK)
        code, answer = event_insert(gym=request.auth, payload=body)
        return Response(answer, status=code)


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})
