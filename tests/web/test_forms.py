"""Writes through the pages: each goes through its service; bad input re-renders the form."""

import html
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import resolve, reverse

from apps.builds.models import Build, State
from apps.projects.models import Project
from tests.builders.srpm_factory import make_srpm
from tests.factories import BuildFactory, BuildTaskFactory, UserFactory, chroot
from tests.web.conftest import settings_post

pytestmark = pytest.mark.django_db

NEW_PROJECT = {"chroots": ["fedora-43-x86_64", "fedora-44-x86_64"], "bootstrap": "default"}
NEW_PROJECT |= {"isolation": "default", "description": "Tools", "instructions": "Use it."}


def test_a_member_creates_a_project_owned_by_the_group(client, packagers):
    member = UserFactory(username="member")
    packagers.members.add(member)
    client.force_login(member)
    form = client.get(reverse("project-new")).content.decode()
    assert '<option value="@packagers">' in form
    response = client.post(
        reverse("project-new"), {**NEW_PROJECT, "owner": "@packagers", "name": "kit"}
    )
    assert response.status_code == 302
    assert response.url == "/coprs/g/packagers/kit/"
    project = Project.objects.get(name="kit")
    assert project.owner_group == packagers and project.created_by == member
    assert sorted(project.chroots.values_list("name", flat=True)) == NEW_PROJECT["chroots"]
    page = client.get(response.url).content.decode()
    assert '<p class="message success">Project @packagers/kit created with 2 chroots.' in page
    # The hub form: a bare `dnf copr enable @packagers/kit` would ask Fedora's Copr.
    assert "dnf copr enable 127.0.0.1/@packagers/kit" in page
    assert "/etc/dnf/plugins/copr.d/127.0.0.1.conf" in page
    assert "/dnf/copr-hub.conf" in page
    assert "/coprs/g/packagers/kit/repo/fedora-43/group_packagers-kit-fedora-43.repo" in page


def test_repo_link_of_the_overview_serves_the_repo_file(client, personal_project):
    page = client.get(reverse("project-detail", args=["alice", "hello"])).content.decode()
    link = "/coprs/alice/hello/repo/fedora-43/alice-hello-fedora-43.repo"
    assert link in page
    response = client.get(link)
    assert response.status_code == 200
    assert "[copr:" in response.content.decode() and "baseurl=" in response.content.decode()


def test_a_taken_name_is_a_message_not_an_error_page(client, alice, personal_project):
    client.force_login(alice)
    response = client.post(
        reverse("project-new"), {**NEW_PROJECT, "owner": "alice", "name": "hello"}
    )
    assert response.status_code == 400
    assert "You already have a project named" in response.content.decode()
    assert Project.objects.filter(name="hello").count() == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": ".."}, "is not a valid project name"),
        ({"name": "проект"}, "Name must contain only letters, digits, underscores"),
        ({"name": "ok", "additional_repos": "file:///etc"}, "is not a repository URL"),
        ({"name": "ok", "additional_repos": "http://127.0.0.1:6379/"}, "private or local address"),
    ],
)
def test_bad_names_and_repos_are_shown_on_the_form(client, alice, fields, message):
    client.force_login(alice)
    response = client.post(reverse("project-new"), {**NEW_PROJECT, "owner": "alice", **fields})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Project.objects.exists()


def test_settings_need_a_chroot_and_change_nothing_when_refused(client, alice, personal_project):
    client.force_login(alice)
    url = reverse("project-settings", args=["alice", "hello"])
    response = client.post(url, settings_post(personal_project, chroots=[], description="x"))
    assert response.status_code == 400
    personal_project.refresh_from_db()
    assert personal_project.description == ""


def test_settings_save_every_field(client, alice, personal_project):
    client.force_login(alice)
    url = reverse("project-settings", args=["alice", "hello"])
    data = settings_post(
        personal_project,
        chroots=["fedora-44-x86_64"],
        homepage="https://example.org/hello",
        contact="alice@example.org",
        additional_repos="https://example.org/repo\ncopr://bob/lib",
        enable_net="on",
        delete_after_days="10",
        repo_priority="5",
    )
    assert client.post(url, data).status_code == 302
    project = Project.objects.get(pk=personal_project.pk)
    assert project.enable_net and project.repo_priority == 5
    assert project.additional_repos == ["https://example.org/repo", "copr://bob/lib"]
    assert project.delete_after is not None
    assert list(project.chroots.values_list("name", flat=True)) == ["fedora-44-x86_64"]
    form = client.get(url).context["form"]
    assert form.initial["delete_after_days"] in (10, 11)


def test_an_uploaded_srpm_becomes_a_build(client, alice, personal_project, tmp_path):
    client.force_login(alice)
    srpm = make_srpm(tmp_path, name="hello", auto_req_prov=False)
    upload = SimpleUploadedFile(srpm.name, srpm.read_bytes(), "application/x-rpm")
    url = reverse("build-new-type", args=["alice", "hello", "upload"])
    response = client.post(url, {"pkgs": upload, "chroots": ["fedora-43-x86_64"]})
    assert response.status_code == 302
    build = Build.objects.get()
    assert response.url == reverse("build-detail", args=[build.pk])
    assert build.source_type == "upload" and build.source_json["pkg"] == srpm.name
    assert build.requested_chroots == ["fedora-43-x86_64"]


def test_an_upload_over_the_users_budget_is_refused_on_the_form(
    client, alice, personal_project, tmp_path, settings
):
    client.force_login(alice)
    srpm = make_srpm(tmp_path, name="hello", auto_req_prov=False)
    settings.UPLOADS_USER_BUDGET_BYTES = srpm.stat().st_size * 3 // 2
    url = reverse("build-new-type", args=["alice", "hello", "upload"])
    for expected in (302, 413):
        upload = SimpleUploadedFile(srpm.name, srpm.read_bytes(), "application/x-rpm")
        response = client.post(url, {"pkgs": upload, "chroots": ["fedora-43-x86_64"]})
        assert response.status_code == expected
    page = html.unescape(response.content.decode())
    assert "cancel the ones you no longer need" in page
    assert Build.objects.count() == 1


def test_a_file_that_is_no_srpm_is_refused_with_its_reason(client, alice, personal_project):
    client.force_login(alice)
    upload = SimpleUploadedFile("hello.src.rpm", b"not an rpm", "application/x-rpm")
    url = reverse("build-new-type", args=["alice", "hello", "upload"])
    response = client.post(url, {"pkgs": upload})
    assert response.status_code == 400
    page = html.unescape(response.content.decode())
    assert "not a usable source RPM" in page
    # The reason names the user's file, not the temporary copy it was read from.
    reason = re.search(r"'hello.src.rpm' is not a usable source RPM: ([^<]+)", page)[1]
    assert reason.startswith("hello.src.rpm ") and "tmp" not in reason
    assert not Build.objects.exists()


SCM = {"type": "git", "clone_url": "https://example.org/a.git", "srpm_build_method": "rpkg"}
PYPI = {"pypi_package_name": "requests", "spec_generator": "pyp2spec", "python_versions": ["3"]}
CUSTOM = {"script": "#!/bin/sh\r\necho hi\r\n", "chroot": "fedora-latest-x86_64"}
LINK = {"url": "https://example.org/a-1-1.src.rpm"}
SOURCE_CASES = [
    ("link", LINK, LINK),
    ("scm", SCM, {**SCM, "committish": "", "subdirectory": "", "spec": ""}),
    ("pypi", PYPI, {**PYPI, "pypi_package_version": "", "spec_template": ""}),
    ("rubygems", {"gem_name": "rake"}, {"gem_name": "rake"}),
    (
        "custom",
        CUSTOM,
        {**CUSTOM, "script": "#!/bin/sh\necho hi\n", "builddeps": "", "resultdir": "", "repos": ""},
    ),
]


@pytest.mark.parametrize(("source_type", "data", "expected"), SOURCE_CASES)
def test_every_source_type_submits_copr_source_json(
    client, alice, personal_project, source_type, data, expected
):
    client.force_login(alice)
    url = reverse("build-new-type", args=["alice", "hello", source_type])
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[-2000:]
    build = Build.objects.get()
    assert build.source_type == source_type
    assert build.source_json == expected


def test_a_bad_source_shows_the_checks_message(client, alice, personal_project):
    client.force_login(alice)
    url = reverse("build-new-type", args=["alice", "hello", "scm"])
    response = client.post(
        url, {"type": "git", "clone_url": "/etc/passwd", "srpm_build_method": "rpkg"}
    )
    assert response.status_code == 400
    assert "clone_url must be a remote repository URL" in response.content.decode()
    assert not Build.objects.exists()


def test_permission_request_and_approval(client, alice, personal_project):
    bob = UserFactory(username="bob")
    url = reverse("project-permissions", args=["alice", "hello"])
    client.force_login(bob)
    assert client.post(url, {"ask": "1", "builder": "on"}).status_code == 302
    assert personal_project.permissions.get(user=bob).builder == "request"
    client.force_login(alice)
    page = client.get(url).content.decode()
    assert "bob" in page and f'name="builder_{bob.pk}"' in page
    response = client.post(url, {"decide": "1", f"builder_{bob.pk}": "approved"})
    assert response.status_code == 302
    assert personal_project.permissions.get(user=bob).builder == "approved"
    client.force_login(bob)
    new_build = reverse("build-new", args=["alice", "hello"])
    assert client.get(new_build).status_code == 200
    # Asking again for an approved right keeps it; unticking gives it up.
    assert client.post(url, {"ask": "1", "builder": "on"}).status_code == 302
    assert personal_project.permissions.get(user=bob).builder == "approved"
    assert client.post(url, {"ask": "1"}).status_code == 302
    assert personal_project.permissions.get(user=bob).builder == "nothing"


def test_the_owner_adds_a_builder_by_name_without_a_request(client, alice, personal_project):
    carol = UserFactory(username="carol")
    url = reverse("project-permissions", args=["alice", "hello"])
    client.force_login(alice)
    assert 'id="grant-form"' in client.get(url).content.decode()
    response = client.post(url, {"grant": "1", "username": "carol", "builder": "on"}, follow=True)
    assert "carol is now builder in alice/hello." in response.content.decode()
    permission = personal_project.permissions.get(user=carol)
    assert (permission.builder, permission.admin) == ("approved", "nothing")
    client.post(url, {"grant": "1", "username": "carol", "admin": "on"})
    permission.refresh_from_db()
    assert (permission.builder, permission.admin) == ("approved", "approved")


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"username": "nobody", "builder": "on"}, "There is no user named nobody."),
        ({"username": "carol"}, "Tick builder, admin or both."),
        ({"username": "alice", "admin": "on"}, "alice owns alice/hello; owners have all rights."),
    ],
)
def test_adding_a_permission_explains_what_is_wrong(client, alice, personal_project, fields, error):
    UserFactory(username="carol")
    client.force_login(alice)
    url = reverse("project-permissions", args=["alice", "hello"])
    response = client.post(url, {"grant": "1", **fields})
    assert response.status_code == 400
    assert error in html.unescape(response.content.decode())
    assert not personal_project.permissions.exists()


def test_only_project_admins_add_permissions(client, personal_project):
    bob = UserFactory(username="bob")
    client.force_login(bob)
    url = reverse("project-permissions", args=["alice", "hello"])
    assert 'id="grant-form"' not in client.get(url).content.decode()
    response = client.post(url, {"grant": "1", "username": "bob", "admin": "on"})
    assert response.status_code == 403
    assert not personal_project.permissions.exists()


def test_owners_delete_their_project(client, alice, personal_project):
    client.force_login(alice)
    url = reverse("project-delete", args=["alice", "hello"])
    assert client.get(url).status_code == 200
    response = client.post(url)
    assert response.status_code == 302 and response.url == "/coprs/alice/"
    assert not Project.objects.filter(pk=personal_project.pk).exists()


def test_a_project_with_running_builds_is_not_deleted(client, alice, personal_project):
    BuildFactory(project=personal_project, state=State.RUNNING)
    client.force_login(alice)
    response = client.post(reverse("project-delete", args=["alice", "hello"]))
    assert response.status_code == 409
    assert "unfinished builds" in response.content.decode()
    assert Project.objects.filter(pk=personal_project.pk).exists()


def test_build_page_puts_the_failure_reason_on_top_and_links_logs(client, personal_project):
    build = BuildFactory(project=personal_project, state=State.FAILED)
    BuildTaskFactory(build=build, chroot=None, result_dir=f"srpm-builds/{build.pk:08d}")
    task = BuildTaskFactory(
        build=build,
        chroot=chroot("fedora-43-x86_64"),
        state=State.FAILED,
        state_reason="%build failed: widget.h not found",
        result_dir=f"fedora-43-x86_64/{build.pk:08d}-hello",
    )
    task.started_on = task.ended_on = build.submitted_on
    task.save()
    page = client.get(reverse("build-detail", args=[build.pk])).content.decode()
    assert page.index("widget.h not found") < page.index('<table class="tasks">')
    assert f"/results/alice/hello/fedora-43-x86_64/{build.pk:08d}-hello/builder-live.log" in page
    partial = client.get(reverse("build-detail", args=[build.pk]), {"partial": "status"})
    assert partial.content.decode().startswith('<div id="build-status" data-finished="1"')
    state = client.get(reverse("build-state", args=[build.pk])).json()
    assert (state["state"], state["finished"]) == ("failed", True)
    assert state["tasks"][str(task.pk)] == "failed"
    live = client.get(reverse("build-live-log", args=[build.pk, task.pk])).content.decode()
    assert 'data-log-url="http' in live and "builder-live.log" in live


def test_urls_copr_users_know(personal_project, group_project):
    assert reverse("build-detail", args=[7]) == "/builds/7/"
    assert reverse("project-detail", args=["@packagers", "tools"]) == "/coprs/g/packagers/tools/"
    assert resolve("/coprs/g/packagers/").kwargs == {"owner": "@packagers"}
    assert resolve("/coprs/alice/hello/build/7/").url_name == "project-build-detail"
    # copr-cli prints /coprs/build/<id>/: no project page may take it.
    assert resolve("/coprs/build/7/").url_name not in ("project-detail", "owner-projects")


def test_search_finds_projects_and_jumps_to_builds(client, personal_project, group_project):
    build = BuildFactory(project=personal_project)
    assert client.get(reverse("search"), {"q": str(build.pk)}).url == f"/builds/{build.pk}/"
    found = client.get(reverse("search"), {"q": "alice/hel"}).context["page"]
    assert [p["full_name"] for p in found] == ["alice/hello"]
    found = client.get(reverse("search"), {"q": "@packagers"}).context["page"]
    assert [p["full_name"] for p in found] == ["@packagers/tools"]


def test_writes_need_the_csrf_token(alice, personal_project):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    url = reverse("project-settings", args=["alice", "hello"])
    response = client.post(url, settings_post(personal_project, description="forged"))
    assert response.status_code == 403
    personal_project.refresh_from_db()
    assert personal_project.description == ""
    assert 'name="csrfmiddlewaretoken"' in client.get(url).content.decode()


def test_a_build_is_shown_only_under_its_own_project(client, personal_project, group_project):
    build = BuildFactory(project=personal_project)
    assert client.get(f"/coprs/alice/hello/build/{build.pk}/").status_code == 200
    assert client.get(f"/coprs/g/packagers/tools/build/{build.pk}/").status_code == 404
