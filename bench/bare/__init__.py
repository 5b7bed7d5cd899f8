"""A bare insert-only events endpoint: the floor the product's API is measured against.

Served only by the benchmark (``python -m bench.api``), with its own settings module
(``DJANGO_SETTINGS_MODULE=bench.bare.settings``) and URLs; the product's ``config/urls.py``
never includes it. It reuses what a naive endpoint in this project would reuse: the
product's settings and database, the gym key authentication, ``event_validate`` and the
``Event`` model. Per event it authenticates, validates, stores the row and answers 201:
no figures, no evaluation, no advice. An array is stored row by row, one transaction per
row, as a naive endpoint does.
"""
