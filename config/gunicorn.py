"""gunicorn settings for running several worker processes (``gunicorn -c config/gunicorn.py``).

What multi-process Prometheus metrics need (coaching/metrics.py), and the garbage collector
told to leave the objects loaded at start alone and to collect after a large request
(config/process.py); everything else is given on the command line.
With ``PROMETHEUS_MULTIPROC_DIR`` set, the directory is emptied when gunicorn starts (figures of
an earlier run would otherwise be added to this one's), and a worker's files for live gauges
are removed when it exits. Without it, nothing happens.
"""

import glob
import os


def on_starting(server):
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
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
