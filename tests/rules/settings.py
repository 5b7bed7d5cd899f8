"""Settings for the rules app's own tests: a tiny test domain, and no ``coaching`` at all.

That the whole rules suite passes with these settings is the proof that the engine app
stands on its own.
"""

from config.settings import *

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "coaching"] + ["tests.rules.testdomain"]
ROOT_URLCONF = "tests.rules.urls"
import os  # noqa: E402

# A file (not an in-memory database) so that a second process can share the test database.
_db = os.environ.get("RULES_TEST_DB") or str(BASE_DIR / "test-rules.sqlite3")
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": _db, "TEST": {"NAME": _db}}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
