"""A broker outage during submissions: every answered build is built, none is duplicated.

The production setup as processes (gunicorn, a `rundramatiq` worker, a redis-server of
our own), driven over HTTP like copr-cli. Redis is stopped while uploads arrive and
started again; builds committed meanwhile wait in the outbox and are built once it is back.
"""

import time

import pytest
import requests

from tests.builders.srpm_factory import make_srpm
from tests.e2e.processes import CoprApi, RedisServer, Service

pytestmark = pytest.mark.e2e
CHROOT = "fedora-43-x86_64"
SUBMITS = 9
OUTAGE = range(3, 6)  # the submits made while Redis is down


@pytest.fixture
def service(tmp_path):
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    # A short tick, so the outbox is drained seconds after the broker is back.
    running = Service(tmp_path / "var", redis.url, RECONCILE_SECONDS=2)
    try:
        credentials = running.prepare("alice")
        running.start_web()
        running.start_workers()
        yield running, redis, CoprApi(running.url, "alice", credentials)
    finally:
        running.stop()
        redis.stop()


def test_builds_answered_during_a_broker_outage_all_succeed_once(service, tmp_path):
    running, redis, api = service
    api.project_add("outage", [CHROOT])
    srpm = make_srpm(tmp_path, name="steady", auto_req_prov=False)
    answers = []
    for number in range(SUBMITS):
        if number == OUTAGE.start:
            redis.stop()
        if number == OUTAGE.stop:
            redis.start()
        answers.append(api.upload("outage", srpm, [CHROOT]))

    assert [r.status_code for r in answers] == [200] * SUBMITS, [r.text for r in answers]
    answered = {r.json()["id"] for r in answers}
    finished = wait_for_final_states(api, "outage", answered, timeout=300)
    assert finished == dict.fromkeys(answered, "succeeded")
    # Nothing was created twice, and every message left the outbox.
    assert running.count("builds.Build") == len(answered)
    assert running.count("core.OutboxMessage") == 0


def wait_for_final_states(api: CoprApi, project: str, ids: set[int], *, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    states = {}
    while time.monotonic() < deadline:
        try:
            states = {b["id"]: b["state"] for b in api.builds(project) if b["id"] in ids}
        except requests.RequestException:
            states = {}
        if len(states) == len(ids) and all(
            s in ("succeeded", "failed", "canceled") for s in states.values()
        ):
            return states
        time.sleep(1)
    pytest.fail(f"builds not finished after {timeout} s: {states}")
