"""The benchmark's bare endpoint (bench/bare/) stores what it is sent, and the product never serves it."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.urls import get_resolver

from coaching.models import Advice, Event

from .conftest import EVENTS_URL, GymClient, run


def _views(patterns) -> list[str]:
    found = []
    for pattern in patterns:
        if hasattr(pattern, "url_patterns"):
            found += _views(pattern.url_patterns)
        else:
            callback = pattern.callback
            found.append(getattr(callback, "view_class", callback).__module__)
    return found


def test_product_urls_never_serve_the_bench() -> None:
    assert not [module for module in _views(get_resolver("config.urls").url_patterns) if module.startswith("bench")]


@pytest.mark.django_db
@override_settings(ROOT_URLCONF="bench.bare.urls")
def test_bare_endpoint_stores_rows_without_evaluating(client: GymClient) -> None:
    assert client.send(run(external_id="bare-1"), expect=201).json()["external_id"] == "bare-1"
    answers = client.post(EVENTS_URL, [run(external_id="bare-2"), {"type": "run"}], format="json").json()
    assert [answer["status"] for answer in answers] == [201, 400]
    assert client.send(run(external_id="bare-1"), expect=200)
    assert Event.objects.filter(evaluated=False).count() == 2
    assert not Advice.objects.exists()
