"""The portal in a real browser: an @packagers member builds an SRPM, a second user gets rights.

Debian's chromium driven by Playwright against the live server; login through the real OIDC
provider started by the test (its `groups` claim makes the packager a member of @packagers);
the real worker builds. Screenshots of the main pages go to screenshots/ (git-ignored).
"""

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from apps.accounts.models import User
from apps.builds.models import BuildTask, State
from tests.builders.srpm_factory import make_srpm
from tests.e2e.conftest import wait_for
from tests.e2e.oidc import PACKAGER, oidc_login, save_screenshot

pytest_plugins = ["tests.e2e.oidc"]
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Builds share this machine with other test runs: wait long before calling it a failure.
BUILD_TIMEOUT_MS = 360_000
OUTSIDER = ("bob", "bob-at-the-idp-1")


def test_packager_builds_from_the_browser_and_grants_a_builder(
    oidc_provider, chromium, browser_page, live_server, worker, tmp_path
):
    page, base = browser_page, live_server.url
    oidc_login(page, live_server, PACKAGER.username, PACKAGER.password)
    create_group_project(page, base)
    build_id = upload_srpm(page, tmp_path)
    follow_the_live_log(page, base, build_id)
    expect(page.locator("#build-state")).to_have_text("succeeded", timeout=BUILD_TIMEOUT_MS)
    save_screenshot(page, "build-succeeded")
    open_repo_file(page, base)
    browse_lists(page, base)
    add_package_and_fork(page, base)

    oidc_provider.add_user(*OUTSIDER, groups=[])
    outsider_context = chromium.new_context()
    outsider_context.set_default_timeout(60_000)
    outsider = outsider_context.new_page()
    try:
        outsider_asks_for_builder(outsider, base)
        owner_approves(page, base)
        outsider.goto(f"{base}/coprs/g/packagers/webtools/permissions/")
        expect(outsider.locator("#my-permissions")).to_contain_text("builder: approved")
        outsider.get_by_role("link", name="New build").click()
        expect(outsider.locator("#id_pkgs")).to_be_visible()
    finally:
        outsider_context.close()
    operator_console(page, base, build_id)


def create_group_project(page, base: str) -> None:
    page.goto(f"{base}/projects/new/?owner=@packagers")
    page.locator("#id_name").fill("webtools")
    page.get_by_label("fedora-43-x86_64", exact=True).check()
    page.locator("#id_description").fill("Tools built in the browser test.")
    page.locator("#id_instructions").fill("Enable the repository, then dnf install hello.")
    expect(page.locator("#id_owner")).to_have_value("@packagers")
    save_screenshot(page, "project-new")
    page.get_by_role("button", name="Create the project").click()
    expect(page).to_have_url(f"{base}/coprs/g/packagers/webtools/")
    hub = urlsplit(base).hostname
    expect(page.locator("#enable-command")).to_have_text(
        f"dnf copr enable {hub}/@packagers/webtools"
    )
    expect(page.locator("#hub-config-command")).to_have_text(
        f"curl -o /etc/dnf/plugins/copr.d/{hub}.conf {base}/dnf/copr-hub.conf"
    )
    save_screenshot(page, "project-overview")


def upload_srpm(page, tmp_path) -> int:
    # A few seconds of %build, so the live log has something to follow.
    script = "echo compiling hello slowly; sleep 8; gcc -o %{name} hello.c; echo done compiling"
    srpm = make_srpm(tmp_path, name="hello", auto_req_prov=False, build_script=script)
    page.get_by_role("link", name="New build").click()
    page.locator("#id_pkgs").set_input_files(str(srpm))
    save_screenshot(page, "build-new-upload")
    page.get_by_role("button", name="Build").click()
    expect(page).to_have_url(re.compile(r"/builds/\d+/$"))
    return int(re.search(r"/builds/(\d+)/$", page.url).group(1))


def follow_the_live_log(page, base: str, build_id: int) -> None:
    """While the RPM task runs, its live log page shows the output and stops when it ends."""
    task = wait_for(
        lambda: BuildTask.objects.filter(
            build_id=build_id, chroot__isnull=False, state=State.RUNNING
        ).first(),
        timeout=BUILD_TIMEOUT_MS / 1000,
        what="the RPM task to run",
    )
    save_screenshot(page, "build-running")
    console_shows_the_busy_builder(page, base, task)
    log_page = page.context.new_page()
    # The page reads the log only when it has grown: no failed request (404, 416) on the way.
    failed = []
    log_page.on(
        "response", lambda response: failed.append(response) if response.status >= 400 else None
    )
    console_errors = []
    log_page.on(
        "console",
        lambda message: console_errors.append(message.text) if message.type == "error" else None,
    )
    try:
        log_page.goto(f"{base}/builds/{build_id}/live/{task.pk}/")
        log = log_page.locator("#live-log")
        expect(log).to_contain_text("compiling hello slowly", timeout=BUILD_TIMEOUT_MS)
        save_screenshot(log_page, "live-log-running")
        expect(log).to_have_attribute("data-complete", "1", timeout=BUILD_TIMEOUT_MS)
        expect(log).to_contain_text("done compiling")
        expect(log_page.locator("#log-note")).to_contain_text("succeeded")
        save_screenshot(log_page, "live-log-complete")
        log_page.wait_for_timeout(2500)  # one more poll: nothing is read once complete
        assert [(r.status, r.url) for r in failed] == [] and console_errors == []
    finally:
        log_page.close()


def open_repo_file(page, base: str) -> None:
    page.goto(f"{base}/coprs/g/packagers/webtools/")
    link = page.locator("a.repo-link").first
    href = link.get_attribute("href")
    assert href.endswith(
        "/coprs/g/packagers/webtools/repo/fedora-43/group_packagers-webtools-fedora-43.repo"
    )
    response = page.request.get(base + href)
    assert response.status == 200
    text = response.text()
    assert "[copr:" in text and "group_packagers:webtools]" in text
    assert f"baseurl={base}/results/@packagers/webtools/fedora-$releasever-$basearch/" in text


def browse_lists(page, base: str) -> None:
    for name, path in [
        ("home", "/"),
        ("projects", "/coprs/"),
        ("group-projects", "/coprs/g/packagers/"),
        ("builds", "/coprs/g/packagers/webtools/builds/"),
        ("packages", "/coprs/g/packagers/webtools/packages/"),
        ("package", "/coprs/g/packagers/webtools/package/hello/"),
        ("settings", "/coprs/g/packagers/webtools/edit/"),
        ("status", "/status/"),
        ("user", f"/user/{PACKAGER.username}/"),
    ]:
        response = page.goto(base + path)
        assert response.status == 200, path
        save_screenshot(page, f"page-{name}")
    page.goto(f"{base}/coprs/g/packagers/webtools/permissions/")
    save_screenshot(page, "page-permissions")
    page.goto(f"{base}/coprs/g/packagers/webtools/builds/?state=succeeded")
    expect(page.locator("table.builds tbody tr")).to_have_count(1)
    expect(page.locator("table.builds")).to_contain_text("hello")


def add_package_and_fork(page, base: str) -> None:
    """The package, chroot, integrations and fork pages, each used once through its form."""
    project_url = f"{base}/coprs/g/packagers/webtools/"
    page.goto(project_url + "packages/")
    page.get_by_role("link", name="Add a package").click()
    page.locator("#id_name").fill("tool")
    page.locator("#id_clone_url").fill("https://example.org/tool.git")
    page.get_by_label("Auto-rebuild").check()
    save_screenshot(page, "package-new-scm")
    page.get_by_role("button", name="Add the package").click()
    expect(page.locator("table.package-info").first).to_contain_text("https://example.org/tool.git")
    save_screenshot(page, "package-detail")
    page.get_by_role("link", name="Edit").click()
    save_screenshot(page, "package-edit")

    page.goto(project_url + "edit/")
    page.locator("#chroot-fedora-43-x86_64 summary").click()
    page.locator("#id_fedora-43-x86_64-additional_packages").fill("gcc make")
    save_screenshot(page, "settings-chroot")
    page.get_by_role("button", name="Save fedora-43-x86_64").click()
    expect(page.locator(".message")).to_contain_text("Settings of fedora-43-x86_64 saved")

    page.get_by_role("link", name="Integrations").click()
    expect(page.locator("code.webhook-url").first).to_contain_text("/webhooks/github/")
    save_screenshot(page, "integrations")

    page.get_by_role("link", name="Fork").click()
    page.locator("#id_owner").select_option(PACKAGER.username)
    save_screenshot(page, "fork")
    page.get_by_role("button", name="Fork").click()
    expect(page.locator(".message")).to_contain_text(
        f"Forked @packagers/webtools into {PACKAGER.username}/webtools: 2 package(s), 1 build(s)"
    )
    save_screenshot(page, "fork-result")


def outsider_asks_for_builder(outsider, base: str) -> None:
    project_url = f"{base}/coprs/g/packagers/webtools/"
    outsider.goto(project_url)
    expect(outsider.get_by_role("link", name="Settings")).to_have_count(0)
    oidc_login(outsider, base, *OUTSIDER)
    assert not User.objects.get(username="bob").owner_groups.exists()
    outsider.goto(project_url)
    expect(outsider.get_by_role("link", name="Settings")).to_have_count(0)
    expect(outsider.get_by_role("link", name="New build")).to_have_count(0)
    assert outsider.goto(project_url + "edit/").status == 403
    outsider.goto(project_url + "permissions/")
    outsider.get_by_label("Builder").check()
    outsider.get_by_role("button", name="Request").click()
    expect(outsider.locator("#my-permissions")).to_contain_text("builder: request")
    save_screenshot(outsider, "permissions-requested")


def owner_approves(page, base: str) -> None:
    bob = User.objects.get(username="bob")
    page.goto(f"{base}/coprs/g/packagers/webtools/permissions/")
    page.locator(f"#id_builder_{bob.pk}").select_option("approved")
    save_screenshot(page, "permissions-approve")
    page.get_by_role("button", name="Save permissions").click()
    expect(page.locator(f"#id_builder_{bob.pk}")).to_have_value("approved")


def console_shows_the_busy_builder(page, base: str, task) -> None:
    """While the task runs, the console's builders list names it on its builder."""
    User.objects.filter(username=PACKAGER.username).update(is_staff=True, is_superuser=True)
    console = page.context.new_page()
    try:
        console.goto(f"{base}/admin/fleet/builder/")
        expect(console.locator("#result_list")).to_contain_text(task.task_id)
        expect(console.locator("#result_list")).to_contain_text("1 of")
        save_screenshot(console, "admin-builders-busy")
    finally:
        console.close()
    User.objects.filter(username=PACKAGER.username).update(is_staff=False, is_superuser=False)


def operator_console(page, base: str, build_id: int) -> None:
    """The console's build and builder pages, as the packager made operator sees them."""
    User.objects.filter(username=PACKAGER.username).update(is_staff=True, is_superuser=True)
    page.goto(f"{base}/admin/")
    save_screenshot(page, "admin-index")
    page.goto(f"{base}/admin/builds/build/{build_id}/change/")
    expect(page.locator("body")).to_contain_text("builder-live.log")
    save_screenshot(page, "admin-build")
    page.goto(f"{base}/admin/fleet/builder/")
    expect(page.locator("#result_list")).to_contain_text("idle")
    save_screenshot(page, "admin-builders")
    page.locator("#result_list tbody a").first.click()
    save_screenshot(page, "admin-builder")
