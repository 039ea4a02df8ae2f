"""The web and backend roles as if on separate hosts: nothing shared but the database, the
broker and HTTP; two web hosts.

Each role has its own VAR_DIR (uploads, results, keys, temp dirs): the web role's gunicorn
keeps uploads, the backend's `rundramatiq` workers fetch them over HTTP (WEB_INTERNAL_URL)
and publish results that a gunicorn of the backend serves (RESULTS_URL). A build uploaded
to the web succeeds, its upload leaves the web once its source task ended, every link
the web hands out reaches the results on the backend's side, and a resubmit takes the SRPM
from there.
"""

import json
import secrets
import time

import pytest
import requests

from tests.builders.srpm_factory import make_binary_rpm, make_srpm
from tests.e2e.processes import CoprApi, RedisServer, Service
from tests.e2e.test_broker_outage import wait_for_final_states

pytestmark = pytest.mark.e2e
CHROOT = "fedora-43-x86_64"


@pytest.fixture
def roles(tmp_path):
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    shared = {
        "database_url": f"sqlite:///{tmp_path / 'shared.sqlite3'}",
        "SECRET_KEY": secrets.token_urlsafe(40),
        "RECONCILE_SECONDS": 2,
    }
    for role in ("web", "web2", "backend"):
        (tmp_path / role).mkdir()
    backend = Service(tmp_path / "backend", redis.url, **shared)
    # Two web hosts, each naming itself in WEB_INTERNAL_URL (where it keeps its uploads).
    webs = [
        Service(tmp_path / name, redis.url, RESULTS_URL=f"{backend.url}/results", **shared)
        for name in ("web", "web2")
    ]
    for web in webs:
        web.env.update(WEB_INTERNAL_URL=web.url, PUBLIC_URL=webs[0].url)
    web, second_web = webs
    # The backend knows the site by its public URL, and reaches the first web host.
    backend.env.update(PUBLIC_URL=web.url, WEB_INTERNAL_URL=web.url)
    try:
        credentials = web.prepare("alice")
        web.manage("collectstatic", "--noinput")  # the web role's pages
        second_web.manage("collectstatic", "--noinput")
        web.start_web()
        second_web.start_web(workers=1, threads=4)
        backend.start_web(workers=1, threads=4)  # the backend's results server
        backend.start_workers()
        yield web, backend, CoprApi(web.url, "alice", credentials), second_web
    finally:
        backend.stop()
        second_web.stop()
        web.stop()
        redis.stop()


def test_an_upload_builds_with_the_roles_on_separate_hosts(roles, tmp_path):
    web, backend, api, second_web = roles
    api.project_add("apart", [CHROOT])
    srpm = make_srpm(tmp_path, name="apart", auto_req_prov=False)

    # Through the second web host: the backend fetches from the host that took the upload,
    # not from the one its own WEB_INTERNAL_URL names.
    through_second = CoprApi(second_web.url, "alice", api.session.auth)
    answer = through_second.upload("apart", srpm, [CHROOT])
    assert answer.status_code == 200, answer.text
    build_id = answer.json()["id"]
    # The web keeps the upload until the source task has it; the backend never sees its dir.
    upload = second_web.var_dir / "uploads" / f"{build_id:08d}"
    assert (upload / srpm.name).is_file()

    states = wait_for_final_states(api, "apart", {build_id}, timeout=300)
    assert states == {build_id: "succeeded"}, backend_log(backend)

    # The upload left that web host once its source task ended (the backend said so).
    assert wait_until(lambda: not upload.exists())
    assert not (backend.var_dir / "uploads" / f"{build_id:08d}").exists()

    # Every link leads to the backend's results server; the web holds no results.
    build = api.session.get(f"{api.url}/build/{build_id}", timeout=30).json()
    assert build["repo_url"] == f"{backend.url}/results/alice/apart"
    task = api.session.get(
        f"{api.url}/build-chroot", params={"build_id": build_id, "chrootname": CHROOT}, timeout=30
    ).json()
    assert task["result_url"].startswith(f"{backend.url}/results/alice/apart/{CHROOT}/")
    log = requests.get(task["result_url"] + "builder-live.log.gz", timeout=30)
    assert log.status_code == 200 and log.headers["Access-Control-Allow-Origin"] == "*"
    assert not (web.var_dir / "results" / "alice").exists()
    page = requests.get(f"{web.url}/builds/{build_id}/", timeout=30).text
    assert f'href="{task["result_url"]}builder-live.log.gz"' in page

    repo = requests.get(f"{web.url}/coprs/alice/apart/repo/fedora-43/", timeout=30).text
    baseurl = f"{backend.url}/results/alice/apart/fedora-$releasever-$basearch/"
    assert f"baseurl={baseurl}" in repo
    repodata = baseurl.replace("$releasever", "43").replace("$basearch", "x86_64")
    assert requests.get(repodata + "repodata/repomd.xml", timeout=30).status_code == 200

    # Resubmitted: the web holds no results, the backend takes the SRPM from its own.
    answer = api.session.post(f"{web.url}/api/v1/builds/{build_id}/resubmit", json={}, timeout=60)
    assert answer.status_code == 201, answer.text
    again = answer.json()["id"]
    states = wait_for_final_states(api, "apart", {again}, timeout=300)
    assert states == {again: "succeeded"}, backend_log(backend)
    assert not (web.var_dir / "results" / "alice").exists()


def test_uploadrpm_reaches_the_backend_with_the_roles_apart(roles, tmp_path):
    """copr-cli uploadrpm: the web keeps the RPM, the backend fetches, signs and publishes it."""
    web, backend, api, _ = roles
    api.project_add("binaries", [CHROOT])
    rpm = make_binary_rpm(tmp_path, name="prebuilt", auto_req_prov=False)
    data = {"ownername": "alice", "projectname": "binaries", "chroots": [CHROOT]}
    answer = api.session.post(
        f"{api.url}/build/create/rpm-upload",
        files={
            "json": ("json", json.dumps(data), "application/json"),
            "pkgs": (rpm.name, rpm.read_bytes(), "application/x-rpm"),
        },
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    build_id = answer.json()["id"]

    states = wait_for_final_states(api, "binaries", {build_id}, timeout=300)
    assert states == {build_id: "succeeded"}, backend_log(backend)
    assert wait_until(lambda: not (web.var_dir / "uploads" / f"{build_id:08d}").exists())
    task = api.session.get(
        f"{api.url}/build-chroot", params={"build_id": build_id, "chrootname": CHROOT}, timeout=30
    ).json()
    published = requests.get(task["result_url"] + rpm.name, timeout=30)
    assert published.status_code == 200 and len(published.content) > 0


def wait_until(predicate, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return predicate()


def backend_log(service: Service) -> str:
    return (service.var_dir / "workers.log").read_text()[-3000:]
