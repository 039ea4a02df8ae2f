"""The packager's buttons, clicked in a real browser: the build page's Resubmit, the builds
list's bulk delete, the packages list's per-row Rebuild and a devel-mode project's
Regenerate repositories.

Debian's chromium driven by Playwright against the live server: the owner logs in with a
password, resubmits an SCM build with another timeout, then ticks two finished builds on
the builds list and deletes them with "Delete selected" (accepting the confirmation).
No build runs: the rows come from the factories.
"""

import pytest
from playwright.sync_api import expect

from apps.builds.models import Build, State
from apps.packages.models import Package
from apps.repos.models import Repository
from tests.factories import BuildFactory, BuildTaskFactory, ProjectFactory, UserFactory, chroot

pytest_plugins = ["tests.e2e.oidc"]
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"
SCM_SOURCE = {
    "type": "git",
    "clone_url": "https://example.org/hello.git",
    "committish": "main",
    "subdirectory": "",
    "spec": "hello.spec",
    "srpm_build_method": "rpkg",
}


def log_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.locator("#password-login button[type=submit]").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def test_resubmit_and_bulk_delete_work_in_a_browser(live_server, browser_page, settings):
    settings.SUBMIT_CHECK_URLS = False
    alice = UserFactory(username="alice")
    project = ProjectFactory(owner_user=alice, name="hello", chroot_names=["fedora-43-x86_64"])
    scm_build = BuildFactory(
        project=project,
        source_type="scm",
        source_json=SCM_SOURCE,
        requested_chroots=["fedora-43-x86_64"],
    )
    BuildTaskFactory(build=scm_build, chroot=chroot("fedora-43-x86_64"))
    doomed = [BuildFactory(project=project, state=State.FAILED) for _ in range(2)]
    page = browser_page
    page.on("dialog", lambda dialog: dialog.accept())
    log_in(page, live_server, "alice")

    page.goto(f"{live_server.url}/builds/{scm_build.pk}/")
    expect(page.locator(".source-items")).to_contain_text("https://example.org/hello.git")
    page.get_by_role("link", name="Resubmit", exact=True).click()
    page.fill("#id_timeout", "7200")
    page.get_by_role("button", name="Resubmit", exact=True).click()
    resubmitted = Build.objects.exclude(pk__in=[scm_build.pk, *(b.pk for b in doomed)]).get()
    expect(page.get_by_role("heading", name=f"Build {resubmitted.pk}")).to_be_visible()
    assert (resubmitted.source_json, resubmitted.timeout) == (SCM_SOURCE, 7200)

    page.goto(f"{live_server.url}/coprs/alice/hello/builds/")
    for build in doomed:
        page.get_by_label(f"Select build {build.pk}").check()
    page.get_by_role("button", name="Delete selected").click()
    expect(page.get_by_label(f"Select build {doomed[0].pk}")).to_have_count(0)
    assert not Build.objects.filter(pk__in=[b.pk for b in doomed]).exists()
    assert Build.objects.filter(pk=scm_build.pk).exists()


def test_a_rows_rebuild_and_regenerate_repositories_work_in_a_browser(
    live_server, browser_page, settings
):
    settings.SUBMIT_CHECK_URLS = False
    alice = UserFactory(username="alice")
    project = ProjectFactory(owner_user=alice, name="devel", chroot_names=["fedora-43-x86_64"])
    Package.objects.create(project=project, name="hello", source_type="scm", source_json=SCM_SOURCE)
    project.devel_mode = True
    project.save(update_fields=["devel_mode"])
    page = browser_page
    log_in(page, live_server, "alice")

    page.goto(f"{live_server.url}/coprs/alice/devel/packages/")
    page.locator("tr", has_text="hello").get_by_role("button", name="Rebuild").click()
    rebuilt = Build.objects.get(project=project)
    expect(page.get_by_role("heading", name=f"Build {rebuilt.pk}")).to_be_visible()
    assert (rebuilt.package.name, rebuilt.source_json) == ("hello", SCM_SOURCE)

    page.goto(f"{live_server.url}/coprs/alice/devel/")
    page.get_by_role("button", name="Regenerate repositories").click()
    expect(page.get_by_role("heading", name="Development mode")).to_be_visible()
    assert Repository.objects.filter(project=project, main_requested_serial__gt=0).exists()
