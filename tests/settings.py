"""Settings for the test suite: the product's own, with debug off as in production.

The suite needs a secret key like any start with debug off; it sets one of its own in the
environment, so that the servers and commands the tests start in other processes share it.
"""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-" + "k" * 50)

from config.settings import *  # noqa: F403
