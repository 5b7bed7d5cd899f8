"""``GET /metrics`` serves Prometheus metrics to the operator's network only (docs/api.md).

Requests by method, view and status; events stored by type; advice given and withdrawn by
rule and severity; evaluation time; failed evaluations; and the pending evaluations, read
from the database when scraped. This process's metrics are shared by the whole test run,
so the tests compare a scrape before with one after.
"""

from __future__ import annotations

import pytest
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families

from coaching.models import Advice

from .conftest import EVENTS_URL, day, engine_break, pain, profile, run

pytestmark = pytest.mark.django_db

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(**extra: str) -> Samples:
    response = Client(**extra).get("/metrics")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_metrics_count_requests_events_advice_and_evaluation_time(client, pack):
    before = scrape()
    client.send(profile(at=day(-1), cleared_by_physician=True), expect=201)
    client.send(run(at=day(0), external_id="hurt", pain_during=8), expect=201)
    client.send([pain(at=day(0, hour=2), pain=3), run(at=day(1))], expect=200)
    client.send(run(at=day(0), external_id="hurt", pain_during=8), expect=200)  # a repeat: nothing stored
    after = scrape()

    assert moved(before, after, "rlbp_http_requests_total", method="POST", view="api:events", status="201") == 2
    assert moved(before, after, "rlbp_http_requests_total", method="POST", view="api:events", status="200") == 2
    assert moved(before, after, "rlbp_events_stored_total", type="run") == 2
    assert moved(before, after, "rlbp_events_stored_total", type="pain_report") == 1
    assert moved(before, after, "rlbp_events_stored_total", type="profile") == 1
    for advice in Advice.objects.filter(withdrawn_at__isnull=True):
        assert moved(before, after, "rlbp_advice_given_total", rule=advice.rule_key, severity=advice.severity) >= 1
    given = sum(v for (name, _), v in after.items() if name == "rlbp_advice_given_total") - sum(
        v for (name, _), v in before.items() if name == "rlbp_advice_given_total"
    )
    assert given == Advice.objects.count() > 0
    assert moved(before, after, "rlbp_evaluation_seconds_count") == 3  # one per member and request
    assert moved(before, after, "rlbp_evaluation_seconds_sum") > 0
    assert value(after, "rlbp_evaluations_pending") == 0


def test_advice_withdrawn_by_a_late_event_is_counted(client, pack):
    client.send(run(at=day(2)), expect=201)  # an uncleared member's first run: medical-clearance
    before = scrape()
    client.send(run(at=day(0)), expect=201)  # a late first run: the advice moves to it
    after = scrape()
    withdrawn = Advice.objects.filter(withdrawn_at__isnull=False)
    assert withdrawn.filter(rule_key="medical-clearance").exists()
    for advice in withdrawn:
        assert moved(before, after, "rlbp_advice_withdrawn_total", rule=advice.rule_key, severity=advice.severity) >= 1
    total = sum(
        moved(before, after, name, **dict(labels)) for name, labels in after if name == "rlbp_advice_withdrawn_total"
    )
    assert total == withdrawn.count()


def test_failed_evaluations_are_counted_and_pending_read_from_the_database(client, pack, monkeypatch):
    before = scrape()
    engine_break(monkeypatch)
    client.send(run(at=day(0), member="m-2"), expect=201)
    client.send(run(at=day(1), member="m-3"), expect=201)
    after = scrape()
    assert moved(before, after, "rlbp_evaluations_failed_total") == 2
    assert value(after, "rlbp_evaluations_pending") == 2
    monkeypatch.undo()
    client.send(run(at=day(2), member="m-2"), expect=201)  # the member's next event completes theirs
    assert value(scrape(), "rlbp_evaluations_pending") == 1


def test_metrics_are_forbidden_outside_the_operators_network(db):
    response = Client(REMOTE_ADDR="203.0.113.9").get("/metrics")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert "METRICS_ALLOWED_IPS" in response.json()["detail"]
    assert Client(REMOTE_ADDR="::1").get("/metrics").status_code == 200


@override_settings(METRICS_ALLOWED_IPS=["10.1.0.0/16", "192.0.2.7"])
def test_metrics_allowed_networks_are_configurable(db):
    assert Client(REMOTE_ADDR="10.1.44.3").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="::ffff:192.0.2.7").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="10.2.0.1").get("/metrics").status_code == 403
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 403


def test_unknown_api_urls_are_counted_under_one_view_name(client):
    before = scrape()
    client.get("/api/v1/nothing-here/1234/")
    client.get(EVENTS_URL)
    after = scrape()
    assert moved(before, after, "rlbp_http_requests_total", method="GET", view="api:events", status="200") == 1
    not_found = [labels for name, labels in after if name == "rlbp_http_requests_total" and ("status", "404") in labels]
    assert not any("1234" in str(labels) for labels in not_found)
