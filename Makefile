# make run   : set up everything and serve on http://127.0.0.1:$(PORT) (SQLite by default)
# make test  : set up everything and run the whole suite
# make bench : engine and API benchmarks (prints tables)
SHELL := /bin/bash
PORT ?= 8000
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

# First interpreter that durable-rules' C extension supports (3.11 or 3.12).
PYTHON ?= $(shell for p in python3.12 python3.11 python3; do \
	if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(0 if sys.version_info[:2] in ((3,11),(3,12)) else 1)' 2>/dev/null; then command -v $$p; break; fi; done)

.PHONY: run test test-postgres lint bench venv setup clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@if [ -z "$(PYTHON)" ] || ! "$(PYTHON)" -c 'import sys; sys.exit(0 if sys.version_info[:2] in ((3,11),(3,12)) else 1)' 2>/dev/null; then \
		echo "Python 3.11 or 3.12 is needed ('$(PYTHON)' is not one): durable-rules' C extension does not build on 3.13 or later. Install python3.11 or python3.12 with its venv and headers (Debian: apt-get install python3.11 python3.11-venv python3.11-dev), or point PYTHON=/path/to/python3.11 at one, and run again." >&2; exit 1; fi
	@if [ -x $(PY) ] && ! $(PY) -c 'import sys; sys.exit(0 if sys.version_info[:2] in ((3,11),(3,12)) else 1)'; then \
		echo "$(VENV) uses an unsupported Python; recreating it with $(PYTHON)"; rm -rf $(VENV); fi
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.installed

setup: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py installpack
	$(PY) manage.py collectstatic --noinput -v 0

# gunicorn, one process with threads: a production server (no dev-server warnings, no
# keep-alive stalls), and one process keeps a background simulation's progress in one place.
# Served as in production, with debug off: a development secret key is made on the first run
# and kept in the git-ignored .dev-secret-key (a DJANGO_SECRET_KEY of your own wins).
RUN_ENV = DJANGO_DEBUG=false ALLOWED_HOSTS=127.0.0.1,localhost \
	DJANGO_SECRET_KEY="$${DJANGO_SECRET_KEY:-$$(cat .dev-secret-key)}"
run: setup
	@[ -s .dev-secret-key ] || (umask 077 && $(PY) -c 'import secrets; print(secrets.token_urlsafe(50))' > .dev-secret-key)
	$(RUN_ENV) $(PY) manage.py demo --port $(PORT)
	$(RUN_ENV) $(VENV)/bin/gunicorn config.wsgi --bind 127.0.0.1:$(PORT) --workers 1 --threads 8 \
		--access-logfile - --error-logfile - --graceful-timeout 5

test: venv
	$(PY) manage.py collectstatic --noinput -v 0
	$(PY) -m pytest tests/rules --ds=tests.rules.settings -p no:cacheprovider
	$(PY) -m pytest tests -p no:cacheprovider

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Both suites again on PostgreSQL (DATABASE_URL must point at a server; .ci/run starts one).
test-postgres: venv
	@[ -n "$(DATABASE_URL)" ] || { echo "Set DATABASE_URL=postgres://user:password@host/db" >&2; exit 1; }
	$(PY) -m pytest tests/rules --ds=tests.rules.settings -p no:cacheprovider
	$(PY) -m pytest tests -p no:cacheprovider -m "not browser"

bench: setup
	$(PIP) install -q --disable-pip-version-check -r requirements-bench.txt
	$(PY) -m bench.engine
	$(PY) -m bench.api

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-* test-rules.sqlite3
