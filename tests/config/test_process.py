"""A long-running process tunes its garbage collector once loaded (config.process): what is
loaded is frozen, and the first generation is collected far less often than the default."""

from __future__ import annotations

import subprocess
import sys

from django.conf import settings
from django.utils.module_loading import import_string

from config.process import FIRST_GENERATION_THRESHOLD, collector_tune


def test_a_queue_worker_tunes_its_collector_once_loaded_as_a_web_process_does():
    assert import_string(settings.RULES_ENGINE["WORKER_READY"]) is collector_tune


def test_collector_tune_freezes_what_is_loaded_and_raises_the_first_threshold():
    # In a process of its own: the test run's collector stays as it is.
    script = (
        "import gc; from config.process import collector_tune; collector_tune(); "
        "print(gc.get_threshold()[0], gc.get_freeze_count() > 0)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(FIRST_GENERATION_THRESHOLD), "True"]


def test_a_large_request_is_followed_by_a_full_collection_a_small_one_is_not():
    script = (
        "import gc; from config.process import LARGE_REQUEST_BYTES, collect_after_request, collector_tune\n"
        "collector_tune()\n"
        "def cycles():\n"
        "    for _ in range(1000):\n"
        "        a = {}; a['self'] = a\n"
        "    return gc.get_count()[0]\n"
        "before = cycles(); collect_after_request(LARGE_REQUEST_BYTES - 1); small = gc.get_count()[0]\n"
        "cycles(); collect_after_request(LARGE_REQUEST_BYTES); large = gc.get_count()[0]\n"
        "print(small >= before, large < 100)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "True"]


def test_a_large_request_runs_without_the_cyclic_collector_and_every_request_ends_with_it_on():
    script = (
        "import gc; from config.process import LARGE_REQUEST_BYTES, collect_after_request, pause_for_request\n"
        "pause_for_request(LARGE_REQUEST_BYTES - 1); small = gc.isenabled()\n"
        "collect_after_request(LARGE_REQUEST_BYTES - 1)\n"
        "pause_for_request(LARGE_REQUEST_BYTES); large = gc.isenabled(); collect_after_request(0)\n"
        "after = gc.isenabled()\n"
        "pause_for_request(LARGE_REQUEST_BYTES); collect_after_request(LARGE_REQUEST_BYTES)\n"
        "print(small, large, after, gc.isenabled())"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "False", "True", "True"]
