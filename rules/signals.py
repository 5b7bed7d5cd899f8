"""Signals the rules app sends, for a domain that observes it (metrics, logs). Nothing in
``rules`` depends on a receiver.

- ``job_finished``: a worker finished running a job of the queue (``rules.jobs``), a stored
  one or a periodic one. Arguments: ``kind`` (the job's kind, or the periodic job's name),
  ``outcome`` (``done``, ``failed``, ``skipped``) and ``seconds`` (how long it ran).
"""

from django.dispatch import Signal

job_finished = Signal()
