"""The backend down: with no worker running (broker up, then down too), the web role still
serves its pages and accepts builds from APIv3 and the web form; they are built once a
worker starts.

The production setup as processes (gunicorn, a redis-server of our own, later a
`rundramatiq` worker): messages wait in the broker while no worker reads it, and in the
outbox while the broker itself is down (apps/core/queue.py); the worker's reconcile tick
sends those once it runs.
"""

import configparser
import re

import pytest
import requests

from tests.builders.srpm_factory import make_srpm
from tests.e2e.processes import CoprApi, RedisServer, Service
from tests.e2e.test_broker_outage import wait_for_final_states

pytestmark = pytest.mark.e2e
CHROOT = "fedora-43-x86_64"
PASSWORD = "a web login for the test"


@pytest.fixture
def web_only(tmp_path):
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    running = Service(tmp_path / "var", redis.url, RECONCILE_SECONDS=2)
    try:
        running.manage("migrate", "--noinput")
        running.manage("collectstatic", "--noinput")
        config = configparser.ConfigParser()
        config.read_string(running.manage("create_user", "alice", "--password", PASSWORD))
        credentials = config["copr-cli"]["login"], config["copr-cli"]["token"]
        running.start_web()
        yield running, redis, CoprApi(running.url, "alice", credentials)
    finally:
        running.stop()
        redis.stop()


def logged_in(base: str) -> requests.Session:
    browser = requests.Session()
    browser.get(f"{base}/login/", timeout=30).raise_for_status()
    answer = browser.post(
        f"{base}/login/",
        data={
            "username": "alice",
            "password": PASSWORD,
            "csrfmiddlewaretoken": browser.cookies["csrftoken"],
        },
        timeout=30,
    )
    answer.raise_for_status()
    assert "sessionid" in browser.cookies, "the password login did not take"
    return browser


def submit_with_the_web_form(browser: requests.Session, base: str, project: str, srpm) -> int:
    form_url = f"{base}/coprs/alice/{project}/add_build/upload/"
    browser.get(form_url, timeout=30).raise_for_status()
    answer = browser.post(
        form_url,
        data={"chroots": [CHROOT], "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
        files={"pkgs": (srpm.name, srpm.read_bytes(), "application/x-rpm")},
        timeout=120,
    )
    assert answer.status_code == 200, answer.text[-2000:]
    found = re.search(r"/builds/(\d+)/$", answer.url)
    assert found, f"the form did not lead to the build page: {answer.url}"
    return int(found[1])


def test_builds_accepted_while_no_backend_runs_are_built_when_it_starts(web_only, tmp_path):
    running, redis, api = web_only
    assert not running.workers_alive()
    api.project_add("down", [CHROOT])
    srpm = make_srpm(tmp_path, name="patient", auto_req_prov=False)
    browser = logged_in(running.url)

    # No worker: the broker holds the messages.
    by_api = api.upload("down", srpm, [CHROOT])
    assert by_api.status_code == 200, by_api.text
    by_form = submit_with_the_web_form(browser, running.url, "down", srpm)

    # No broker either: the outbox holds them.
    redis.stop()
    during_outage = api.upload("down", srpm, [CHROOT])
    assert during_outage.status_code == 200, during_outage.text
    ids = {by_api.json()["id"], by_form, during_outage.json()["id"]}
    for build_id in ids:
        page = browser.get(f"{running.url}/builds/{build_id}/", timeout=30)
        assert page.status_code == 200
        assert "pending" in page.text or "importing" in page.text
    assert browser.get(f"{running.url}/coprs/alice/down/builds/", timeout=30).status_code == 200
    assert running.count("core.OutboxMessage") >= 1

    # The backend returns: everything accepted meanwhile is built, once.
    redis.start()
    running.start_workers()
    finished = wait_for_final_states(api, "down", ids, timeout=300)
    assert finished == dict.fromkeys(ids, "succeeded")
    assert running.count("builds.Build") == len(ids)
    assert running.count("core.OutboxMessage") == 0
