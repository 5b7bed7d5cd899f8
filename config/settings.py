"""Settings for the running-with-lower-back-pain rules product.

Everything that differs between machines comes from the environment, with safe defaults:
debug is off unless DJANGO_DEBUG=true, however the product is started, and with it off a
missing DJANGO_SECRET_KEY stops the start. docs/deployment.md lists what production sets.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from config.version import VERSION

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it to a long random string (debug is off unless DJANGO_DEBUG=true)."
        )
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"  # noqa: S105 (debug only)

ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h.strip()
]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

# Behind HTTPS (DJANGO_HTTPS=true): secure cookies, HSTS and redirects to https. HSTS defaults to
# a year for this host and its subdomains, with the preload directive (docs/deployment.md, Security), so
# `check --deploy` is clean; each part can be turned down by its variable.
if env_bool("DJANGO_HTTPS", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", True)
# Load balancers probe health (and scrape metrics) over plain http: never redirected to https.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics/?$"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our own static files: no CDN needed
    "django_tasks",
    "django_tasks_db",  # the task queue's jobs live in the database: nothing else to run
    "csp",
    "rules",
    "coaching",
]

MIDDLEWARE = [
    # First, so that its request id, timing and log line cover everything below it.
    "coaching.api.middleware.RequestObservationMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's and Swagger UI's static files with DEBUG off too, without a web server.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, so it sees a view's exception first: errors under /api/ answer JSON, never HTML.
    "coaching.api.middleware.ApiErrorMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The project's own overrides of the admin's base (the favicon).
        "DIRS": [BASE_DIR / "config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the API write while the admin reads; a busy timeout rides out short locks.
    # IMMEDIATE transactions take the write lock when they begin: a deferred one that reads
    # and then writes fails at once with "database is locked" under concurrent requests
    # (SQLite cannot wait on a lock upgrade), instead of waiting its turn.
    # config.sqlite: Django's SQLite backend whose writers in one process wait on a lock, not in
    # SQLite's sleeping busy handler (see its docstring).
    DATABASES["default"]["ENGINE"] = "config.sqlite"
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The task queue (rules.jobs): jobs are rows in the database, run by `manage.py worker`.
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
# A running job writes a heartbeat this often; one silent for JOBS_STALE_SECONDS was cut off.
JOBS_HEARTBEAT_SECONDS = float(os.environ.get("JOBS_HEARTBEAT_SECONDS", "10"))
JOBS_STALE_SECONDS = float(os.environ.get("JOBS_STALE_SECONDS", "120"))
JOBS_KEEP_DAYS = int(os.environ.get("JOBS_KEEP_DAYS", "30"))
# A re-evaluation of many members is split into up to this many parts (of at least 200 members
# each), each a job any worker on any host takes: set it to the number of queue workers there are.
JOBS_PARTS = max(1, int(os.environ.get("JOBS_PARTS", "2")))
# Periodic jobs: how often cut-off jobs are looked for, and events whose evaluation failed or
# was cut off are judged again (each period's run happens on exactly one worker).
JOBS_SWEEP_SECONDS = int(os.environ.get("JOBS_SWEEP_SECONDS", "60"))
EVALUATIONS_COMPLETE_SECONDS = int(os.environ.get("EVALUATIONS_COMPLETE_SECONDS", "60"))
# Integrations (docs/integrating.md): webhook deliveries are asked for at each change and looked
# for this often besides; advice on events older than WEBHOOK_MAX_AGE_DAYS is not pushed; plain
# http and private addresses for endpoints only for local use; the change feed lists a change
# once FEED_SETTLE_SECONDS have passed (a watermark never passes a change still being written).
WEBHOOKS_DELIVER_SECONDS = int(os.environ.get("WEBHOOKS_DELIVER_SECONDS", "15"))
WEBHOOK_MAX_AGE_DAYS = int(os.environ.get("WEBHOOK_MAX_AGE_DAYS", "7"))
WEBHOOKS_ALLOW_HTTP = os.environ.get("WEBHOOKS_ALLOW_HTTP", "false").lower() in ("1", "true", "yes", "on")
FEED_SETTLE_SECONDS = float(os.environ.get("FEED_SETTLE_SECONDS", "5"))
# The rules engine's settings (rules/conf.py): a queue worker tunes its garbage collector once
# loaded, as a web process does (config/process.py); RULES_PUBLISH_APPROVALS clinicians other
# than the author approve each publish and roll-back in the admin (0: none, for a practice of one).
RULES_ENGINE = {
    "WORKER_READY": "config.process.collector_tune",
    "PUBLISH_APPROVALS": int(os.environ.get("RULES_PUBLISH_APPROVALS", "1")),
    "SIMULATION_PARTS": JOBS_PARTS,
}

# Checked wherever a password is set: the admin's forms, createclinician, demo (docs/deployment.md, Security).
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Login lockout (django-axes, docs/deployment.md, Security): after DJANGO_LOGIN_FAILURE_LIMIT wrong passwords
# for one username from one address, that pair may not log in for DJANGO_LOGIN_COOLOFF_MINUTES.
# Failures are rows in the database, so every process and host sees the same count.
INSTALLED_APPS += ["axes"]
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]  # axes wants it last; it only rewrites a locked-out answer
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out login before the password is checked
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = int(os.environ.get("DJANGO_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = dt.timedelta(minutes=float(os.environ.get("DJANGO_LOGIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Tries while locked out do not push the end of the pause further, so the page's time holds.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "config.security.login_locked_out"
AXES_CLIENT_IP_CALLABLE = "config.security.client_ip"
# Behind proxies: the header they write the client's address into (e.g. X-Forwarded-For), and how
# many of them append to it. Unset: REMOTE_ADDR, the only address a client cannot forge.
CLIENT_IP_HEADER = os.environ.get("DJANGO_CLIENT_IP_HEADER", "").strip()
if CLIENT_IP_HEADER and not CLIENT_IP_HEADER.upper().startswith("HTTP_"):
    CLIENT_IP_HEADER = "HTTP_" + CLIENT_IP_HEADER  # the header's name as request.META spells it
CLIENT_IP_HEADER = CLIENT_IP_HEADER.upper().replace("-", "_")
PROXY_COUNT = int(os.environ.get("DJANGO_PROXY_COUNT", "1"))

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "config" / "static"]
# One date format across the admin ("20 Nov 2026, 07:30"): config/formats/en/formats.py.
FORMAT_MODULE_PATH = ["config.formats"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Content-Security-Policy (django-csp) on every answer: scripts, styles, fonts and images only
# from this site's own static files (the admin's, the rule editor's and Swagger UI's, all served
# here), no inline script or style, no plugins, no framing; images may also be data: URIs
# (Swagger UI draws its icons so). Nothing a clinician enters can run as script even if a
# template forgot to escape it.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024  # a request body over 1 MiB answers 413 (docs/api.md)

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    # DRF's JSON renderer, by orjson where that writes the same JSON (coaching.api.renderers).
    # DRF's browsable pages only with debug on: in production the API answers JSON, whatever
    # ``?format=`` or ``Accept`` asks for.
    "DEFAULT_RENDERER_CLASSES": [
        "coaching.api.renderers.JSONRenderer",
        *(["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    ],
    "PAGE_SIZE": 50,
    # Per gym, counted in the shared cache (CACHES below); an array of events is one request.
    "DEFAULT_THROTTLE_RATES": {"gym": os.environ.get("API_THROTTLE_RATE", "6000/minute")},
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Running with lower back pain: advice API",
    "DESCRIPTION": "Gyms post members' events and get the article's advice back.",
    "VERSION": VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "coaching.api.schema.schema_postprocess",
    ],
}

# -- Operations (docs/deployment.md): shared cache, metrics, logs -------------------------------
# What the processes share lives in a shared store: the rate limit's counters in Redis when
# CACHE_URL names one, else in the database (coaching.RateCounter, one atomic upsert each); the
# cache is Redis, or a table of the database (made by `migrate`, see coaching.apps).
CACHE_URL = os.environ.get("CACHE_URL", "")
if CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": CACHE_URL}}
elif CACHE_URL:
    raise ImproperlyConfigured(f"CACHE_URL must be a redis:// URL, or unset for the database cache: {CACHE_URL!r}.")
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "cache_entries"}}

# Several processes of a host write their metrics to files in this directory (coaching/metrics.py);
# it must exist before the first of them is counted.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

# Who may read GET /metrics: comma-separated IPs or networks (CIDR).
METRICS_ALLOWED_IPS = [
    ip.strip() for ip in os.environ.get("METRICS_ALLOWED_IPS", "127.0.0.1,::1").split(",") if ip.strip()
]

# LOG_FORMAT=json: one JSON object per line; anything else: plain text. Either way each line
# carries what is known of its request (request id, gym, member, event, ruleset version).
LOG_FORMAT = os.environ.get("LOG_FORMAT", "text").strip().lower()
if LOG_FORMAT == "json":
    from coaching.logs import json_everywhere

    json_everywhere()  # warnings and uncaught exceptions as JSON lines too
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "coaching.logs.LogContextFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s%(context)s"},
        "json": {"()": "coaching.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["context"],
            "formatter": "json" if LOG_FORMAT == "json" else "text",
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
    # One line per request (method, path, status, duration): REQUEST_LOG_LEVEL=WARNING silences it.
    "loggers": {
        "coaching.requests": {"level": os.environ.get("REQUEST_LOG_LEVEL", "INFO")},
        # `serve`'s own lines: the deployment checks, what it started, a queue worker restarted.
        "coaching.serve": {"level": "INFO"},
    },
}

# Error reports to Sentry when SENTRY_DSN is set (off by default), never with members' data:
# see config/error_tracking.py for what a report holds.
SENTRY_DSN = os.environ.get("SENTRY_DSN", "").strip()
if SENTRY_DSN:
    from config.error_tracking import error_tracking_init

    error_tracking_init(dsn=SENTRY_DSN, environment=os.environ.get("SENTRY_ENVIRONMENT", "production"))
