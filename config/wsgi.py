"""WSGI entry point (gunicorn in ``make run``; runserver and the tests load it too)."""

import io
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def chunked_body(app, limit: int):
    """Give Django a length for chunked request bodies, which it would otherwise read as empty.

    At most ``limit + 1`` bytes are read, so an oversized body still answers 413.
    """

    def application(environ, start_response):
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not environ.get("CONTENT_LENGTH"):
            body = environ["wsgi.input"].read(limit + 1)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return app(environ, start_response)

    return application


_django = get_wsgi_application()

from django.conf import settings  # noqa: E402

application = chunked_body(_django, settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
