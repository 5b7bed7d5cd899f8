"""Settings for the test suite: the product's own, with debug off as in production.

The suite needs a secret key like any start with debug off; it sets one of its own in the
environment, so that the servers and commands the tests start in other processes share it.
"""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-" + "k" * 50)

from config.settings import *  # noqa: F403

# The change feed lists a change at once (the product waits a few seconds, so that a watermark
# never passes a change still being written; test_integrations shows that wait).
FEED_SETTLE_SECONDS = 0
