"""Every error answer under /api/ is JSON, whatever DJANGO_DEBUG says."""

import pytest
from django.db import OperationalError
from django.test import override_settings

from coaching.api import middleware
from coaching.api import views as api_views
from coaching.internal.db.database import DATABASE_UNREACHABLE, RETRY_AFTER


def _broken(exc):
    def fail(**kwargs):
        raise exc

    return fail


@pytest.mark.parametrize("debug", [True, False])
def test_an_unexpected_error_answers_json_500_not_an_html_page(client, member, monkeypatch, debug):
    monkeypatch.setattr(api_views.selectors, "member_summary", _broken(RuntimeError("bug")))
    client.raise_request_exception = False
    with override_settings(DEBUG=debug):
        response = client.get("/api/v1/members/m-1/")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"detail": middleware.SERVER_ERROR}


def test_a_database_that_went_away_answers_503_with_retry_after(client, member, monkeypatch):
    monkeypatch.setattr(
        api_views.selectors, "member_summary", _broken(OperationalError("server closed the connection"))
    )
    client.raise_request_exception = False
    response = client.get("/api/v1/members/m-1/")
    assert response.status_code == 503
    assert response["Retry-After"] == str(RETRY_AFTER["unreachable"])
    assert response.json() == {"detail": DATABASE_UNREACHABLE}
