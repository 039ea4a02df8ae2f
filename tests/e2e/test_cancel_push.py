"""A cancel reaches a running build's sandbox in under a second, without the database poll.

In process (the embedded worker), through PostgreSQL's NOTIFY, and through the Redis
broker's pub/sub for a service of separate processes on SQLite.
"""

import subprocess
import threading
import time

import pytest
import redis
import requests
from django.db import connection, transaction

from apps.builds import cancel_push, execution
from apps.builds.models import BuildTask, State
from tests.builders.srpm_factory import make_srpm
from tests.e2e.conftest import finished_build, wait_for
from tests.e2e.processes import CoprApi, RedisServer, Service

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
SLEEP = "sleep 617"  # a command line no other test runs


def sleeping() -> bool:
    return bool(subprocess.run(["pgrep", "-f", SLEEP], capture_output=True).stdout)


def test_cancel_stops_the_sandbox_within_a_second(
    live_server, worker, packager, tmp_path, monkeypatch
):
    # The poll would notice the cancel only after an hour: only the push can be in time.
    monkeypatch.setattr(execution, "POLL_DATABASE_SECONDS", 3600)
    _, token, _ = packager
    srpm = make_srpm(tmp_path, name="sleeper", build_script=f"{SLEEP}; gcc -o sleeper hello.c")
    with open(srpm, "rb") as handle:
        response = requests.post(
            f"{live_server.url}/api/v1/projects/packager/tools/builds",
            files={"srpm": (srpm.name, handle, "application/x-rpm")},
            data={"chroots": ["fedora-43-x86_64"]},
            auth=(token.login, token.token),
            timeout=60,
        )
    assert response.status_code == 201, response.text
    build_id = response.json()["id"]
    wait_for(sleeping, interval=0.1, what="the build's %build to run")

    started = time.monotonic()
    response = requests.patch(
        f"{live_server.url}/api/v1/builds/{build_id}",
        json={"state": "canceled"},
        auth=(token.login, token.token),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    while sleeping() and time.monotonic() - started < 5:
        time.sleep(0.02)
    elapsed = time.monotonic() - started
    assert not sleeping()
    assert elapsed < 1.0, f"the sandbox stopped {elapsed:.2f} s after the cancel"
    build = finished_build(build_id, timeout=30)
    assert build.state == State.CANCELED
    wait_for(
        lambda: BuildTask.objects.filter(
            build_id=build_id, chroot__name="fedora-43-x86_64", state=State.CANCELED
        ).exists(),
        timeout=30,
        what="the task to end as canceled",
    )


@pytest.mark.skipif(connection.vendor != "postgresql", reason="LISTEN/NOTIFY is PostgreSQL's")
def test_a_notification_from_another_process_wakes_the_watch():
    """What a worker process receives when the web process cancels: only the NOTIFY."""
    canceled = threading.Event()
    cancel_push.watch_register(424242, canceled)
    try:
        assert cancel_push.listening.wait(5)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [cancel_push.CHANNEL, "424242"])
        assert canceled.wait(1.0)
    finally:
        cancel_push.watch_unregister(424242, canceled)


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.mark.skipif(connection.vendor == "postgresql", reason="PostgreSQL's NOTIFY would win")
def test_a_cancel_published_on_the_redis_broker_wakes_the_watch(redis_server, settings):
    """What a worker process on SQLite with a Redis broker receives: only the PUBLISH."""
    settings.BROKER_URL = redis_server.url
    canceled = threading.Event()
    cancel_push.watch_register(434343, canceled)
    try:
        assert cancel_push.listening.wait(5)
        redis.Redis.from_url(redis_server.url).publish(cancel_push.CHANNEL, "434343")
        assert canceled.wait(1.0)
    finally:
        cancel_push.watch_unregister(434343, canceled)


@pytest.mark.skipif(connection.vendor == "postgresql", reason="PostgreSQL's NOTIFY would win")
def test_a_cancel_is_published_only_once_committed(redis_server, settings):
    settings.BROKER_URL = redis_server.url
    with redis.Redis.from_url(redis_server.url).pubsub() as subscription:
        subscription.subscribe(cancel_push.CHANNEL)
        assert subscription.get_message(timeout=5)["type"] == "subscribe"
        with pytest.raises(RuntimeError), transaction.atomic():
            cancel_push.cancel_announce(515151)
            raise RuntimeError("the cancel's transaction rolls back")
        with transaction.atomic():
            cancel_push.cancel_announce(525252)
        message = subscription.get_message(ignore_subscribe_messages=True, timeout=5)
        assert message["data"] == b"525252"
        assert subscription.get_message(ignore_subscribe_messages=True, timeout=0.5) is None


@pytest.mark.skipif(connection.vendor == "postgresql", reason="PostgreSQL's NOTIFY would win")
def test_cancel_through_redis_stops_a_separate_worker_within_a_second(redis_server, tmp_path):
    """gunicorn and a `rundramatiq` worker on SQLite; the worker polls only once an hour."""
    service = Service(tmp_path / "var", redis_server.url, TASK_POLL_SECONDS=3600)
    try:
        api = CoprApi(service.url, "alice", service.prepare("alice"))
        service.start_web()
        service.start_workers()
        api.project_add("sleepy", ["fedora-43-x86_64"])
        srpm = make_srpm(tmp_path, name="sleeper", build_script=f"{SLEEP}; gcc -o sleeper hello.c")
        response = api.upload("sleepy", srpm, ["fedora-43-x86_64"])
        assert response.status_code == 200, response.text
        build_id = response.json()["id"]
        wait_for(sleeping, timeout=180, interval=0.1, what="the build's %build to run")

        started = time.monotonic()
        response = api.session.put(f"{api.url}/build/cancel/{build_id}", timeout=30)
        assert response.status_code == 200, response.text
        while sleeping() and time.monotonic() - started < 5:
            time.sleep(0.02)
        elapsed = time.monotonic() - started
        assert not sleeping()
        assert elapsed < 1.0, f"the sandbox stopped {elapsed:.2f} s after the cancel"
    finally:
        service.stop()
