"""Every kind of page runs under the Content-Security-Policy without one violation, and works.

Debian's chromium driven by Playwright against the live server and the real worker. An init
script reports each `securitypolicyviolation` event to the test, and the browser's console
errors ("Refused to ...") are collected too; each page must also carry the policy header, so
that a page without it cannot pass for a clean one.
"""

import re

import pytest
from playwright.sync_api import expect

from apps.accounts.models import User
from apps.builds.models import BuildTask, State
from tests.builders.srpm_factory import make_srpm
from tests.e2e.conftest import wait_for
from tests.e2e.test_pipeline import submit_upload

pytest_plugins = ["tests.e2e.oidc"]
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

BUILD_TIMEOUT_MS = 360_000
PASSWORD = "csp-test-password-1"
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (event) {
  window.reportViolation([event.violatedDirective, event.blockedURI, event.sourceFile,
                          event.lineNumber, location.pathname].join(" "));
});
"""


class Watched:
    """A page whose CSP violations and console errors are recorded, across navigations."""

    def __init__(self, page) -> None:
        self.page = page
        self.violations: list[str] = []
        self.console_errors: list[str] = []
        page.expose_function("reportViolation", lambda text: self.violations.append(text))
        page.add_init_script(REPORT_VIOLATIONS)
        page.on(
            "console",
            lambda message: (
                self.console_errors.append(f"{page.url}: {message.text}")
                if message.type == "error"
                else None
            ),
        )

    def open(self, url: str) -> None:
        response = self.page.goto(url)
        assert response.status == 200, url
        policy = response.headers.get("content-security-policy", "")
        assert "script-src 'self'" in policy and "object-src 'none'" in policy, (url, policy)
        assert "unsafe-inline" not in policy

    def assert_clean(self) -> None:
        self.page.wait_for_timeout(500)  # a late violation event still reaches us
        assert self.violations == []
        assert [e for e in self.console_errors if "Content Security Policy" in e] == []


def test_every_page_kind_runs_under_the_policy(
    chromium, live_server, worker, packager, tmp_path, settings
):
    user, token, project = packager
    user.set_password(PASSWORD)
    User.objects.filter(pk=user.pk).update(password=user.password, is_staff=True, is_superuser=True)
    base = live_server.url
    script = "echo compiling hello slowly; sleep 8; gcc -o %{name} hello.c; echo done compiling"
    srpm = make_srpm(tmp_path, name="hello", auto_req_prov=False, build_script=script)
    build_id = submit_upload(live_server, token, srpm)

    context = chromium.new_context()
    context.set_default_timeout(60_000)
    watched = Watched(context.new_page())
    page = watched.page
    try:
        log_in(watched, base)
        task = wait_for(
            lambda: BuildTask.objects.filter(
                build_id=build_id, chroot__isnull=False, state=State.RUNNING
            ).first(),
            timeout=BUILD_TIMEOUT_MS / 1000,
            what="the RPM task to run",
        )
        # The running build's pages: the live log grows, then the build page turns final.
        watched.open(f"{base}/builds/{build_id}/live/{task.pk}/")
        log = page.locator("#live-log")
        expect(log).to_contain_text("compiling hello slowly", timeout=BUILD_TIMEOUT_MS)
        expect(log).to_have_attribute("data-complete", "1", timeout=BUILD_TIMEOUT_MS)
        expect(log).to_contain_text("done compiling")
        watched.open(f"{base}/builds/{build_id}/")
        expect(page.locator("#build-state")).to_have_text("succeeded", timeout=BUILD_TIMEOUT_MS)

        project_url = f"{base}/coprs/packager/tools/"
        for path in [
            "/",
            "/coprs/packager/tools/",
            "/coprs/packager/tools/builds/",
            "/coprs/packager/tools/packages/",
            "/coprs/packager/tools/package/hello/",
            "/coprs/packager/tools/monitor/",
            "/coprs/packager/tools/edit/",
            "/status/",
            "/status/pending/",
            "/status/running/",
            "/status/stats/",
            "/status/builders/",
            "/api/",
        ]:
            watched.open(base + path)

        # The legend's colours come from the stylesheet now, not from style attributes.
        watched.open(f"{base}/status/")
        failed_swatch = page.locator(".legend .swatch-failed").first
        expect(failed_swatch).to_have_css("background-color", "rgb(179, 38, 30)")
        watched.open(project_url + "builds/")
        expect(page.locator("table.builds")).to_contain_text("hello")

        operator_console(watched, base, build_id)
        api_docs(watched, base)
        watched.assert_clean()
    finally:
        context.close()


def log_in(watched: Watched, base: str) -> None:
    page = watched.page
    watched.open(f"{base}/login/")
    page.get_by_label("Username").fill("packager")
    page.get_by_label("Password").fill(PASSWORD)
    page.locator("#password-login").get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def operator_console(watched: Watched, base: str, build_id: int) -> None:
    page = watched.page
    watched.open(f"{base}/admin/")
    watched.open(f"{base}/admin/builds/build/")
    watched.open(f"{base}/admin/builds/build/{build_id}/change/")
    expect(page.locator("body")).to_contain_text("builder-live.log")
    watched.open(f"{base}/admin/fleet/builder/")
    watched.open(f"{base}/admin/fleet/builderpool/add/")
    watched.open(f"{base}/admin/accounts/user/")
    # The admin's own scripts run: the "select all" box checks every row's box.
    page.locator("#action-toggle").check()
    expect(page.locator("input.action-select").first).to_be_checked()


def api_docs(watched: Watched, base: str) -> None:
    page = watched.page
    watched.open(f"{base}/api/v1/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("coprsite native API")
    expect(page.locator(".opblock").first).to_be_visible()
    watched.open(f"{base}/api/v1/redoc/")
    expect(page.locator("#redoc-container h1")).to_contain_text("coprsite native API")
    expect(page.locator("#redoc-container")).to_contain_text(re.compile("projects", re.I))
    # Redoc's styled-components rules applied (their <style> carries the nonce).
    menu = page.locator(".menu-content")
    expect(menu).to_have_css("display", "flex")
