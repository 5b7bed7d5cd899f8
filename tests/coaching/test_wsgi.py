"""The WSGI entry point: chunked request bodies (no Content-Length) are read, and still capped at 1 MiB."""

import io
import json
from wsgiref.util import setup_testing_defaults

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from config.wsgi import application
from tests.coaching.conftest import run


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """As Django's test client does: a request must not close the test's database connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def post_chunked(key: str, body: bytes) -> tuple[str, dict]:
    environ: dict = {}
    setup_testing_defaults(environ)
    environ.update(
        {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/api/v1/events/",
            "CONTENT_TYPE": "application/json",
            "HTTP_TRANSFER_ENCODING": "chunked",
            "HTTP_AUTHORIZATION": f"Bearer {key}",
            "wsgi.input": io.BytesIO(body),
        }
    )
    environ.pop("CONTENT_LENGTH", None)
    answer: dict = {}

    def start_response(status, headers, exc_info=None):
        answer["status"] = status

    content = b"".join(application(environ, start_response))
    return answer["status"], json.loads(content)


def test_a_chunked_event_is_stored(client, pack):
    status, body = post_chunked(client.key, json.dumps(run(external_id="chunked-1")).encode())
    assert status.startswith("201"), body
    assert body["external_id"] == "chunked-1"


def test_a_chunked_body_over_one_mebibyte_answers_413(client, pack):
    status, _ = post_chunked(client.key, b"[" + b" " * (1024 * 1024) + b"]")
    assert status.startswith("413")
