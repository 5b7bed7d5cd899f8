"""The product's settings (database, SQLite WAL and IMMEDIATE transactions, middleware and
all), serving only the bare endpoint's URLs."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.bare.urls"
