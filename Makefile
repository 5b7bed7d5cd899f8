# make run   : set up everything and serve on http://127.0.0.1:$(PORT) (SQLite by default)
# make serve : production: WEB_CONCURRENCY web processes on HOST:PORT and QUEUE_WORKERS workers
# make test  : set up everything and run the whole suite
# make bench : engine, API and job benchmarks (prints tables; BENCH_API_ARGS=--full for the long API run)
# make wheels: the wheels of every requirement in wheelhouse/, to install hosts without a compiler
# Interpreter: the first of python3.12, python3.11, python3.13 (or python3, if it is one of
# them) on PATH; PYTHON=/path/to/python3.x picks one, VENV=.venv-3.13 gives it its own
# virtualenv (CI runs the suite in .venv and again with PYTHON=python3.13 VENV=.venv-3.13).
SHELL := /bin/bash
PORT ?= 8000
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

# The CPythons durable-rules' C extension is built and tested on (CONTRIBUTING.md, Python versions).
SUPPORTED := 3.11 3.12 3.13
version_of = $(shell $(1) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
ifndef PYTHON
PYTHON := $(firstword $(foreach p,python3.12 python3.11 python3.13 python3,$(if $(filter $(SUPPORTED),$(call version_of,$(p))),$(p))))
endif
PYTHON_VERSION := $(if $(PYTHON),$(call version_of,$(PYTHON)))
# One stamp per Python version: switching PYTHON to another version rebuilds the venv.
INSTALLED := $(VENV)/.installed-$(PYTHON_VERSION)

# durable-rules is an sdist with a C extension, so pip compiles it. CPython 3.13 removed
# PyEval_CallObject, which the extension calls; mapping it to its equivalent,
# PyObject_CallObject, makes a module that works on 3.13 (CPPFLAGS: its setup.py overwrites
# CFLAGS). It is always built here from the sdist, bypassing pip's cache, so a wheel built
# earlier without the flag is never reused.
DURABLE_RULES := $(filter durable-rules==%,$(file < requirements.txt))
DURABLE_CPPFLAGS := $(if $(filter 3.13,$(PYTHON_VERSION)),-DPyEval_CallObject=PyObject_CallObject)
PIP_INSTALL := $(PIP) install -q --disable-pip-version-check

.PHONY: run serve test test-postgres lint bench screenshots venv setup clean wheels schemathesis examples rulepack-doc

$(INSTALLED): requirements.txt requirements-dev.txt
	@if [ -z "$(filter $(SUPPORTED),$(PYTHON_VERSION))" ]; then \
		echo "Python 3.11, 3.12 or 3.13 is needed ($(if $(PYTHON),'$(PYTHON)' is $(if $(PYTHON_VERSION),Python $(PYTHON_VERSION),not a working Python),none is on PATH)): durable-rules' C extension is built and tested on these only. Install one with its venv module and headers, and gcc (Debian 13, Ubuntu 25.04: apt-get install python3.13 python3.13-venv python3.13-dev gcc; Debian 12: python3.11 python3.11-venv python3.11-dev gcc; Fedora: dnf install python3.13 python3.13-devel gcc), or point PYTHON=/path/to/python3.13 at one, and run again." >&2; exit 1; fi
	@if [ -x $(PY) ] && [ "$$($(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$(PYTHON_VERSION)" ]; then \
		echo "$(VENV) uses another Python; recreating it with $(PYTHON) ($(PYTHON_VERSION))"; rm -rf $(VENV); fi
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	@rm -f $(VENV)/.installed*
	$(if $(DURABLE_CPPFLAGS),CPPFLAGS="$(DURABLE_CPPFLAGS) $$CPPFLAGS") $(PIP_INSTALL) --no-cache-dir --no-binary durable-rules --use-pep517 \
		--force-reinstall --no-deps "$(DURABLE_RULES)"
	@$(PY) -c 'import durable_rules_engine' || { echo "durable-rules was built but does not import on Python $(PYTHON_VERSION)" >&2; exit 1; }
	$(PIP_INSTALL) -r requirements-dev.txt
	@touch $@

venv: $(INSTALLED)

# Debug is off however the product is started, so every command needs a secret key: your
# DJANGO_SECRET_KEY when set, else a development key made on the first run and kept in the
# git-ignored .dev-secret-key.
.dev-secret-key: | $(INSTALLED)
	@umask 077 && $(PY) -c 'import secrets; print(secrets.token_urlsafe(50))' > $@
KEY_ENV = DJANGO_SECRET_KEY="$${DJANGO_SECRET_KEY:-$$(cat .dev-secret-key)}"

setup: venv .dev-secret-key
	$(KEY_ENV) $(PY) manage.py migrate --noinput
	$(KEY_ENV) $(PY) manage.py installpack
	$(KEY_ENV) $(PY) manage.py collectstatic --noinput -v 0

# Served as in production, with debug off. Two web processes (one request at a time each) and
# one task-queue worker beside them (manage.py serve keeps them running).
RUN_ENV = DJANGO_DEBUG=false ALLOWED_HOSTS=127.0.0.1,localhost $(KEY_ENV)
run: setup
	$(RUN_ENV) $(PY) manage.py demo --port $(PORT)
	$(RUN_ENV) $(PY) manage.py serve --host 127.0.0.1 --port $(PORT) --web-concurrency 2 --threads 1 --queue-workers 1

# Production: gunicorn with WEB_CONCURRENCY processes (default 2) on HOST:PORT (default
# 127.0.0.1:8000) and QUEUE_WORKERS task-queue workers (default 1); no demo data, debug off
# unless DJANGO_DEBUG says otherwise; DJANGO_SECRET_KEY and ALLOWED_HOSTS come from you.
serve: setup
	$(PY) manage.py serve

test: venv .dev-secret-key
	$(KEY_ENV) $(PY) manage.py collectstatic --noinput -v 0
	$(PY) -m pytest tests/rules --ds=tests.rules.settings -p no:cacheprovider
	$(PY) -m pytest tests -p no:cacheprovider

# schemathesis against a server it starts on a throw-away database, with a gym of its own: every
# phase and check, seeded and bounded by schemathesis.toml (docs/api.md says what it covers).
schemathesis: venv .dev-secret-key
	$(KEY_ENV) $(PY) -m tests.run_schemathesis

# The OpenAPI document's examples (coaching/api/examples.json), played anew through the API.
examples: venv .dev-secret-key
	EXAMPLES_WRITE=1 $(PY) -m pytest tests/coaching/test_api_examples.py -p no:cacheprovider -q

# docs/rulepack.md, the default rule pack in words, written anew from the pack file.
rulepack-doc: venv
	RULEPACK_DOC_WRITE=1 $(PY) -m pytest tests/coaching/test_rulepack_doc.py -p no:cacheprovider -q

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Both suites again on PostgreSQL (DATABASE_URL must point at a server; .ci/run starts one).
test-postgres: venv
	@[ -n "$(DATABASE_URL)" ] || { echo "Set DATABASE_URL=postgres://user:password@host/db" >&2; exit 1; }
	$(PY) -m pytest tests/rules --ds=tests.rules.settings -p no:cacheprovider
	$(PY) -m pytest tests -p no:cacheprovider -m "not browser"

# The screenshots docs/clinicians.md links (docs/screenshots/), taken by the browser test (needs Chromium).
screenshots: venv .dev-secret-key
	$(KEY_ENV) $(PY) manage.py collectstatic --noinput -v 0
	SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(PY) -m pytest tests/coaching/test_clinician_browser.py -p no:cacheprovider

# BENCH_API_ARGS=--full: the API comparison at its full sizes (the default is --quick);
# BENCH_JOBS_ARGS="--events 100000 --members 2000": a smaller chain than a million events.
bench: setup
	$(PIP_INSTALL) -r requirements-bench.txt
	$(KEY_ENV) $(PY) -m bench.engine
	$(KEY_ENV) $(PY) -m bench.api $(BENCH_API_ARGS)
	$(KEY_ENV) $(PY) -m bench.jobs $(BENCH_JOBS_ARGS)

# The wheels of every requirement of requirements.txt, durable-rules' C extension built here (with
# the flag CPython 3.13 needs), into the git-ignored wheelhouse/: a host with the same CPython
# version and platform then installs with `pip install --no-index --find-links wheelhouse -r
# requirements.txt`, no compiler needed (docs/deployment.md). PYTHON=... builds for another version.
WHEELHOUSE ?= wheelhouse
wheels: venv
	@mkdir -p $(WHEELHOUSE)
	@rm -f $(WHEELHOUSE)/durable_rules-*.whl
	$(if $(DURABLE_CPPFLAGS),CPPFLAGS="$(DURABLE_CPPFLAGS) $$CPPFLAGS") $(PIP) wheel -q --disable-pip-version-check \
		--no-cache-dir --no-binary durable-rules --no-deps --wheel-dir $(WHEELHOUSE) "$(DURABLE_RULES)"
	grep -v '^durable-rules==' requirements.txt > $(WHEELHOUSE)/requirements-without-durable-rules.txt
	$(PIP) wheel -q --disable-pip-version-check --wheel-dir $(WHEELHOUSE) -r $(WHEELHOUSE)/requirements-without-durable-rules.txt
	@rm -f $(WHEELHOUSE)/requirements-without-durable-rules.txt
	@echo "Wheels for CPython $(PYTHON_VERSION) in $(WHEELHOUSE)/: $$(ls $(WHEELHOUSE)/*.whl | wc -l) files"

clean:
	rm -rf $(sort $(VENV) .venv) .venv-3.* db.sqlite3 db.sqlite3-* test-rules.sqlite3 $(WHEELHOUSE)
