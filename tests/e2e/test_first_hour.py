"""The service as `make run` serves it, in a real browser: what a newcomer sees first.

`make run` ends in scripts/serve (migrate, ensure_admin, collectstatic, runserver with the
in-process worker, DEBUG off); this module starts that same script in its own process, with
its own VAR_DIR and no broker, and looks at it through Debian's chromium. Pages must come
with their stylesheet and scripts (WhiteNoise, not the test live server, serves them), and
the API docs must render with the network cut off except for the service.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from tests.builders.srpm_factory import DEFAULT_BUILD_SCRIPT, make_srpm

pytest_plugins = ["tests.e2e.oidc"]
pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT_S = 360
# Settings a developer's shell may carry that `make run` on a fresh machine would not have.
NOT_FROM_MAKE_RUN = ("DATABASE_URL", "BROKER_URL", "DEBUG", "STATIC_ROOT", "VAR_DIR")


class Service:
    def __init__(self, url: str, env: dict, log: Path) -> None:
        self.url = url
        self.env = env
        self.log = log
        self.credentials: tuple[str, str] = ("", "")

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])

    def manage(self, *args: str) -> str:
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=True,
            capture_output=True, text=True, timeout=300,
        ).stdout  # fmt: skip

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(
            method, f"{self.url}/api/v1/{path}", auth=self.credentials, timeout=60, **kwargs
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def made_run(tmp_path_factory):
    """scripts/serve on a free port: the service exactly as `make run` starts it."""
    base = tmp_path_factory.mktemp("first-hour")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in NOT_FROM_MAKE_RUN}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set by the chromium fixture, not by make
    # One builder slot, so a second build is reliably seen pending behind the first.
    env.update(
        VAR_DIR=str(base / "var"),
        PUBLIC_URL=f"http://127.0.0.1:{port}",
        PY=sys.executable,
        LOCAL_BUILDER_SLOTS="1",
    )
    service = Service(f"http://127.0.0.1:{port}", env, base / "serve.log")
    with open(service.log, "w") as log:
        # Its own process group: runserver's autoreloader runs the server in a child.
        server = subprocess.Popen(
            [str(ROOT / "scripts" / "serve"), "127.0.0.1", str(port)], cwd=ROOT, env=env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_until_serving(service, server)
        service.credentials = api_credentials(service.manage("create_user", "alice"))
        yield service
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def wait_until_serving(service: Service, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"scripts/serve exited: {service.log.read_text()}")
        try:
            requests.get(f"{service.url}/", timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.3)
    pytest.fail(f"scripts/serve did not answer within 120 s: {service.log.read_text()}")


def api_credentials(copr_config: str) -> tuple[str, str]:
    login = re.search(r"^login = (.+)$", copr_config, re.M).group(1)
    token = re.search(r"^token = (.+)$", copr_config, re.M).group(1)
    return login, token


def test_the_service_runs_with_debug_off(made_run):
    # Django's debug 404 page lists the URL patterns; the production one does not.
    answer = requests.get(f"{made_run.url}/no-such-page/", timeout=10)
    assert answer.status_code == 404
    assert "URLconf" not in answer.text


def test_static_files_are_compressed_with_cache_busting_names(made_run):
    page = requests.get(f"{made_run.url}/", timeout=10).text
    (href,) = re.findall(r'href="(/static/css/site\.[0-9a-f]{12}\.css)"', page)
    css = requests.get(f"{made_run.url}{href}", headers={"Accept-Encoding": "gzip"}, timeout=10)
    assert css.status_code == 200
    assert css.headers["Content-Type"].startswith("text/css")
    assert css.headers["Content-Encoding"] == "gzip"
    # A hashed name never changes content: browsers may keep it for good.
    assert "immutable" in css.headers["Cache-Control"]


def test_project_and_build_pages_are_styled_and_the_build_page_follows_the_build(
    made_run, browser_page, tmp_path
):
    page = browser_page
    project = {"name": "demo", "chroots": ["fedora-43-x86_64"]}
    created = made_run.api("POST", "projects", json=project)
    assert created.status_code == 201, created.text
    # The first build holds the only builder slot for a while; the second waits behind it.
    slow = submit_srpm(made_run, make_srpm(tmp_path, name="slow", build_script=SLOW))
    # Its RPM task, not only its source task (an uploaded SRPM's needs no slot).
    wait_for_rpm_task_running(made_run, slow)
    waiting = submit_srpm(made_run, make_srpm(tmp_path, name="quick"))

    page.goto(f"{made_run.url}/coprs/alice/demo/")
    assert_styled(page)

    page.goto(f"{made_run.url}/coprs/alice/demo/build/{waiting}/")
    assert_styled(page)
    expect(page.locator("#build-state")).to_have_text("pending")
    # No page.reload() from here on: only the page's own script can show the new state.
    for build_id in (slow, waiting):
        build = finished(made_run, build_id)
        assert build["state"] == "succeeded", task_reasons(made_run, build_id)
    # The page polls every 3 s.
    expect(page.locator("#build-state")).to_have_text("succeeded", timeout=30_000)


SLOW = f"echo building slowly; sleep 15; {DEFAULT_BUILD_SCRIPT}"


def submit_srpm(service: Service, srpm: Path, project: str = "demo") -> int:
    with open(srpm, "rb") as handle:
        submitted = service.api(
            "POST", f"projects/alice/{project}/builds",
            files={"srpm": (srpm.name, handle, "application/x-rpm")},
        )  # fmt: skip
    assert submitted.status_code == 201, submitted.text
    return submitted.json()["id"]


def wait_for_rpm_task_running(service: Service, build_id: int) -> None:
    deadline = time.monotonic() + BUILD_TIMEOUT_S
    while True:
        tasks = service.api("GET", f"builds/{build_id}/tasks").json()
        if any(t["chroot"] and t["state"] == "running" for t in tasks):
            return
        assert time.monotonic() < deadline, f"build {build_id}: no RPM task runs: {tasks}"
        time.sleep(0.3)


def finished(service: Service, build_id: int) -> dict:
    deadline = time.monotonic() + BUILD_TIMEOUT_S
    while (build := service.api("GET", f"builds/{build_id}").json())["state"] not in (
        "succeeded", "failed", "canceled",
    ):  # fmt: skip
        assert time.monotonic() < deadline, f"build {build_id} still {build['state']}"
        time.sleep(0.5)
    return build


def task_reasons(service: Service, build_id: int) -> str:
    tasks = service.api("GET", f"builds/{build_id}/tasks").json()
    reasons = [f"{t['kind']} {t['chroot']}: {t['state']} {t['state_reason']}" for t in tasks]
    return "\n".join([*reasons, service.log_tail()])


def assert_styled(page) -> None:
    """The stylesheet is applied: computed styles differ from the browser's defaults."""
    styles = page.evaluate(
        """() => {
            const root = getComputedStyle(document.documentElement);
            return {bodyMargin: getComputedStyle(document.body).marginTop,
                    brand: root.getPropertyValue("--brand").trim()};
        }"""
    )
    # Without site.css, chromium gives the body an 8px margin and knows no --brand colour.
    assert styles["bodyMargin"] == "0px" and styles["brand"], styles


@pytest.mark.parametrize(
    ("path", "operation"),
    [
        ("/api/v1/docs/", ".opblock-summary-path[data-path='/api/v1/projects']"),
        ("/api/v1/redoc/", "h2 >> text=Projects"),
    ],
)
def test_api_docs_render_offline(made_run, browser_page, path, operation):
    page = browser_page
    outside: list[str] = []

    def only_the_service(route):
        if route.request.url.startswith(made_run.url + "/"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.context.route("**/*", only_the_service)
    page.goto(f"{made_run.url}{path}")
    expect(page.locator(operation).first).to_be_visible()
    assert outside == []


def test_a_packagers_pages_in_a_browser_as_make_run_serves_them(made_run, browser_page, tmp_path):
    """Issue 23's pages, as a visitor sees them: Markdown rendered and sanitized, the last
    build per chroot and the fork count, the repositories tab's `dnf copr enable` line for
    this service, and the package and build lists' columns."""
    page = browser_page
    project = {
        "name": "pages",
        "chroots": ["fedora-43-x86_64"],
        "description": "A **tiny** `hello` <script>window.ran = 1</script>",
        "instructions": "Install [hello](https://example.org/)",
    }
    created = made_run.api("POST", "projects", json=project)
    assert created.status_code == 201, created.text
    build_id = submit_srpm(made_run, make_srpm(tmp_path, name="hello"), project="pages")
    assert finished(made_run, build_id)["state"] == "succeeded", task_reasons(made_run, build_id)
    forked = requests.post(
        f"{made_run.url}/api_3/project/fork/alice/pages",
        json={"name": "pages-fork", "ownername": "alice"},
        auth=made_run.credentials,
        timeout=60,
    )
    assert forked.status_code == 200, forked.text

    page.goto(f"{made_run.url}/coprs/alice/pages/")
    expect(page.locator("strong", has_text="tiny")).to_be_visible()
    expect(page.locator("code", has_text="hello").first).to_be_visible()
    assert page.evaluate("() => window.ran") is None  # the script tag is text, not code
    expect(page.get_by_role("link", name="hello")).to_have_attribute("rel", re.compile("nofollow"))
    last_builds = page.locator("tr", has_text="fedora-43-x86_64")
    expect(last_builds.get_by_role("link", name=str(build_id))).to_be_visible()
    expect(page.get_by_text("Forks: 1.")).to_be_visible()

    page.goto(f"{made_run.url}/coprs/alice/pages/repositories/")
    # The hub is named by its host; its config file (the next line) gives dnf the port.
    expect(page.locator("#enable-command")).to_have_text("dnf copr enable 127.0.0.1/alice/pages")
    expect(page.locator("#hub-config-command")).to_contain_text(f"{made_run.url}/dnf/copr-hub.conf")

    page.goto(f"{made_run.url}/coprs/alice/pages/packages/")
    row = page.locator("tr", has_text="hello")
    expect(row.locator("time")).to_be_visible()  # its last build's time

    page.goto(f"{made_run.url}/coprs/alice/pages/builds/")
    expect(page.get_by_role("columnheader", name="Build time")).to_be_visible()
    expect(
        page.locator("tr", has_text=str(build_id)).locator("td", has_text=" s")
    ).not_to_have_count(0)
