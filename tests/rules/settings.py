"""Settings for the rules app's own tests: a tiny test domain, and no ``coaching`` at all.

That the whole rules suite passes with these settings is the proof that the engine app
stands on its own.
"""

import os

from tests.settings import *

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "coaching"] + ["tests.rules.testdomain"]
MIDDLEWARE = [name for name in MIDDLEWARE if not name.startswith("coaching.")]
ROOT_URLCONF = "tests.rules.urls"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# A second process (the hot-reload test's worker) must reach the test database: it is told
# the test database's name in RULES_TEST_DB.
_shared = os.environ.get("RULES_TEST_DB")
if "sqlite" in DATABASES["default"]["ENGINE"]:
    # A file, not an in-memory database, so that the worker can open it.
    _db = _shared or str(BASE_DIR / "test-rules.sqlite3")
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": _db, "TEST": {"NAME": _db}}}
elif _shared:
    DATABASES["default"]["NAME"] = _shared
