"""gunicorn settings for running several worker processes (``gunicorn -c config/gunicorn.py``).

Proxy headers (``X-Forwarded-Proto`` and the like) are trusted only from the addresses in
``FORWARDED_ALLOW_IPS`` (comma-separated; none when unset, where gunicorn's own default
would trust 127.0.0.1): a client talking to gunicorn directly cannot make a request look
as if it came over HTTPS.

What multi-process Prometheus metrics need (coaching/metrics.py), and the garbage collector
told to leave the objects loaded at start alone and to collect after a large request
(config/process.py); everything else is given on the command line.
With ``PROMETHEUS_MULTIPROC_DIR`` set, the directory is emptied when gunicorn starts (figures of
an earlier run would otherwise be added to this one's) unless ``manage.py serve`` emptied it
before starting the queue workers, whose files gunicorn must then leave alone; a worker's files
for live gauges are removed when it exits. Without it, nothing happens.
"""

import glob
import os

forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "")

# LOG_FORMAT=json: gunicorn's own lines (its error log, on stderr) are JSON objects too, written
# by the product's formatter (coaching/logs.py). Its access log stays off, as it is without a
# log configuration: the product writes a line per request itself (coaching.requests, with the
# request id); GUNICORN_ACCESS_LOG=true adds gunicorn's, as JSON on stdout.
if os.environ.get("LOG_FORMAT", "").strip().lower() == "json":
    logconfig_dict = {
        "formatters": {"json": {"()": "coaching.logs.JsonFormatter"}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
            "stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
        },
        "root": {"level": "WARNING", "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {
                "handlers": ["stdout"],
                "propagate": False,
                "level": "INFO" if os.environ.get("GUNICORN_ACCESS_LOG", "").lower() == "true" else "WARNING",
            },
        },
    }


def on_starting(server):
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory and not os.environ.get("RLBP_METRICS_DIR_EMPTIED"):  # manage.py serve did it
        os.makedirs(directory, exist_ok=True)
        for path in glob.glob(os.path.join(directory, "*.db")):
            os.remove(path)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    from config.process import collector_tune

    collector_tune()  # the application is loaded: see config/process.py


def pre_request(worker, req):
    from config.process import pause_for_request

    worker.log.debug("%s %s", req.method, req.path)  # what gunicorn's own pre_request does
    pause_for_request(_content_length(req))  # see config/process.py


def _content_length(req) -> int:
    """The request's Content-Length header (0: none, or not a number), the same for both hooks."""
    for name, value in req.headers:
        if name == "CONTENT-LENGTH":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def post_request(worker, req, environ, resp):
    from config.process import collect_after_request

    collect_after_request(_content_length(req))  # the answer is sent: see config/process.py
