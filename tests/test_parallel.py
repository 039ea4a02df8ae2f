"""pytest -n: each test process has a Redis database of its own (tests/settings.py)."""

import os
from urllib.parse import urlsplit

import dramatiq
import pytest
from django.conf import settings

from tests import settings as test_settings
from tests.settings import broker_url_for_test_process


@pytest.mark.parametrize(
    ("url", "worker", "workers", "expected"),
    [
        ("redis://127.0.0.1:6379/15", "gw0", 2, "redis://127.0.0.1:6379/15"),
        ("redis://127.0.0.1:6379/15", "gw1", 2, "redis://127.0.0.1:6379/14"),
        ("redis://127.0.0.1:6379/11", "gw1", 2, "redis://127.0.0.1:6379/10"),
        ("redis://127.0.0.1:6379/1", "gw1", 2, "redis://127.0.0.1:6379/0"),
        (
            "rediss://:pw@redis.example:6380/9?socket_timeout=5",
            "gw3",
            4,
            "rediss://:pw@redis.example:6380/6?socket_timeout=5",
        ),
        # Outside xdist, and on the embedded broker, the URL is the one given.
        ("redis://127.0.0.1:6379/15", None, 1, "redis://127.0.0.1:6379/15"),
        ("", "gw1", 2, ""),
    ],
)
def test_each_test_process_takes_the_database_below_the_last(url, worker, workers, expected):
    assert broker_url_for_test_process(url, worker, workers) == expected


@pytest.mark.parametrize(
    ("url", "workers", "reason"),
    [
        ("redis://127.0.0.1:6379/1", 3, "takes Redis databases 1 down to -1"),
        ("redis://127.0.0.1:6379", 2, "name database 1 or higher"),
        ("redis://127.0.0.1:6379/?db=5", 2, "in BROKER_URL's path"),
        ("amqp://guest:guest@127.0.0.1:5672/%2F", 2, "not amqp"),
    ],
)
def test_a_url_that_cannot_give_each_process_a_database_is_refused(url, workers, reason):
    with pytest.raises(ValueError, match=reason):
        broker_url_for_test_process(url, "gw0", workers)


def test_this_process_uses_the_database_made_for_it():
    expected = broker_url_for_test_process(
        test_settings.given_broker_url,
        os.environ.get("PYTEST_XDIST_WORKER"),
        int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")),
    )
    # The processes a test starts get it from the environment.
    assert settings.BROKER_URL == expected == os.environ.get("BROKER_URL", "")
    if expected.startswith("redis"):
        database = int(urlsplit(expected).path.strip("/") or 0)
        assert dramatiq.get_broker().client.connection_pool.connection_kwargs["db"] == database
