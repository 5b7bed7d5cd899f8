"""SQLite (config.sqlite): the writers of one process take turns on a lock, so every write of
many threads goes through, none is lost, and a writer still gives up after the database's
timeout with SQLite's own "database is locked" (which the API answers 503)."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest
from django.db import OperationalError, connections, transaction

ALIAS = "turns"


@contextmanager
def sqlite_file(tmp_path, django_db_blocker, timeout=5.0):
    """A database of its own under the product's SQLite backend and settings."""
    settings = connections.configure_settings(
        {
            "default": connections.settings["default"],
            ALIAS: {
                "ENGINE": "config.sqlite",
                "NAME": str(tmp_path / "turns.sqlite3"),
                "OPTIONS": {
                    "timeout": timeout,
                    "transaction_mode": "IMMEDIATE",
                    "init_command": "PRAGMA journal_mode=WAL;",
                },
            },
        }
    )
    connections.settings[ALIAS] = settings[ALIAS]
    with django_db_blocker.unblock():
        try:
            with connections[ALIAS].cursor() as cursor:
                cursor.execute("CREATE TABLE counter (n INTEGER NOT NULL)")
                cursor.execute("INSERT INTO counter (n) VALUES (0)")
                cursor.execute("CREATE TABLE log (thread INTEGER NOT NULL)")
            yield
        finally:
            connections[ALIAS].close()
            del connections[ALIAS]
            del connections.settings[ALIAS]


def in_thread(target, *args):
    """Run ``target`` in a thread with its own connection (closed after)."""
    errors = []

    def body():
        try:
            target(*args)
        except Exception as exc:  # reported to the test below
            errors.append(exc)
        finally:
            connections[ALIAS].close()

    thread = threading.Thread(target=body)
    thread.start()
    return thread, errors


def increment():
    with transaction.atomic(using=ALIAS), connections[ALIAS].cursor() as cursor:
        cursor.execute("SELECT n FROM counter")
        (n,) = cursor.fetchone()
        cursor.execute("UPDATE counter SET n = %s", [n + 1])


def test_many_threads_writing_at_once_lose_nothing(tmp_path, django_db_blocker):
    with sqlite_file(tmp_path, django_db_blocker):

        def writer(number):
            for _ in range(25):
                increment()  # a transaction: read, then write what was read
                with connections[ALIAS].cursor() as cursor:  # a write on its own (autocommit)
                    cursor.execute("INSERT INTO log (thread) VALUES (%s)", [number])

        started = [in_thread(writer, number) for number in range(8)]
        for thread, _errors in started:
            thread.join()
        assert [error for _thread, errors in started for error in errors] == []
        with connections[ALIAS].cursor() as cursor:
            cursor.execute("SELECT n FROM counter")
            assert cursor.fetchone() == (200,)
            cursor.execute("SELECT COUNT(*) FROM log")
            assert cursor.fetchone() == (200,)


def test_a_writer_gives_up_after_the_timeout_and_the_next_one_goes_through(tmp_path, django_db_blocker):
    with sqlite_file(tmp_path, django_db_blocker, timeout=0.2):
        holding, release = threading.Event(), threading.Event()

        def hold():
            with transaction.atomic(using=ALIAS):
                connections[ALIAS].cursor().execute("UPDATE counter SET n = n + 1")
                holding.set()
                release.wait(5)

        thread, errors = in_thread(hold)
        assert holding.wait(5)
        waited, waiting_errors = in_thread(increment)
        waited.join()
        assert [str(error) for error in waiting_errors] == ["database is locked"]
        assert isinstance(waiting_errors[0], OperationalError)
        release.set()
        thread.join()
        assert errors == []
        increment()
        with connections[ALIAS].cursor() as cursor:
            cursor.execute("SELECT n FROM counter")
            assert cursor.fetchone() == (2,)


def test_a_transaction_that_fails_hands_the_turn_on(tmp_path, django_db_blocker):
    with sqlite_file(tmp_path, django_db_blocker, timeout=0.5):
        with pytest.raises(ZeroDivisionError), transaction.atomic(using=ALIAS):
            connections[ALIAS].cursor().execute("UPDATE counter SET n = n + 1")
            1 / 0  # noqa: B018 (the failure under test)
        thread, errors = in_thread(increment)
        thread.join()
        assert errors == []
        with connections[ALIAS].cursor() as cursor:
            cursor.execute("SELECT n FROM counter")
            assert cursor.fetchone() == (1,)
