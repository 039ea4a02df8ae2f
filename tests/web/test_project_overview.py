"""Project overview (Regenerate in devel mode, last build per chroot, forks), the packages
list (source, Rebuild, submitted, auto-rebuild), mail on permission requests, /api/ docs."""

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse

from apps.builds.models import Build, State
from apps.packages.models import Package
from apps.projects.models import PermissionLevel, Project
from apps.repos.models import Repository
from tests.factories import BuildFactory, BuildTaskFactory, ProjectFactory, UserFactory, chroot
from tests.web.conftest import ROLES, user_in_role

pytestmark = pytest.mark.django_db

CAN_EDIT = {"admin", "owner", "staff"}
CAN_BUILD = CAN_EDIT | {"builder"}


@pytest.mark.parametrize("role", ROLES)
def test_regenerate_repositories_in_devel_mode_for_those_who_can_edit(
    client_as, personal_project, role
):
    Project.objects.filter(pk=personal_project.pk).update(devel_mode=True)
    client = client_as(user_in_role(role, personal_project))
    url = reverse("project-regenerate", args=["alice", "hello"])
    page = client.get(reverse("project-detail", args=["alice", "hello"])).content.decode()
    allowed = role in CAN_EDIT
    assert (url in page) == allowed
    assert "Regenerate repositories" in page if allowed else "Regenerate repositories" not in page
    response = client.post(url)
    if role == "anonymous":
        assert response.status_code == 302 and "/login" in response["Location"]
    else:
        assert response.status_code == (302 if allowed else 403)
    asked = Repository.objects.filter(project=personal_project, main_requested_serial__gt=0)
    assert asked.count() == (2 if allowed else 0)  # both chroots of the project


def test_no_regenerate_button_outside_devel_mode(client, alice, personal_project):
    client.force_login(alice)
    page = client.get(reverse("project-detail", args=["alice", "hello"])).content.decode()
    assert reverse("project-regenerate", args=["alice", "hello"]) not in page


def test_overview_shows_the_last_build_per_chroot_and_the_fork_count(client, personal_project):
    older = BuildFactory(project=personal_project, package_name="hello", package_version="1.0-1")
    newer = BuildFactory(project=personal_project, package_name="hello", package_version="2.0-1")
    x86 = chroot("fedora-43-x86_64")
    BuildTaskFactory(build=older, chroot=x86, state=State.SUCCEEDED)
    BuildTaskFactory(build=older, chroot=chroot("fedora-43-aarch64"), state=State.SUCCEEDED)
    BuildTaskFactory(build=newer, chroot=x86, state=State.FAILED)
    ProjectFactory(name="hello-fork", forked_from=personal_project)
    page = client.get(reverse("project-detail", args=["alice", "hello"])).content.decode()
    newer_url = reverse("build-detail", args=[newer.pk])
    older_url = reverse("build-detail", args=[older.pk])
    assert (
        f'<tr><td>fedora-43-x86_64</td><td><a href="{newer_url}">{newer.pk}</a></td>'
        '<td>hello 2.0-1</td><td><span class="state state-failed">failed</span></td></tr>'
    ) in page
    assert f'<tr><td>fedora-43-aarch64</td><td><a href="{older_url}">{older.pk}</a></td>' in page
    assert "Forks: 1." in page


@pytest.mark.parametrize("role", ROLES)
def test_packages_list_rows(client_as, personal_project, role):
    Package.objects.create(
        project=personal_project,
        name="hello",
        source_type="scm",
        source_json={"clone_url": "https://example.org/hello.git"},
        webhook_rebuild=True,
    )
    Package.objects.create(project=personal_project, name="uploaded")
    BuildFactory(project=personal_project, package_name="uploaded", source_type="upload")
    Build.objects.filter(package_name="uploaded").update(
        package=Package.objects.get(name="uploaded")
    )
    client = client_as(user_in_role(role, personal_project))
    page = client.get(reverse("package-list", args=["alice", "hello"])).content.decode()
    assert "<td>scm</td>" in page
    assert "unset (upload)</span>" in page
    assert "<td>yes</td>" in page and "<td>no</td>" in page
    assert "ago</time></td>" in page  # the uploaded package's last build time
    rebuild_url = reverse("package-rebuild", args=["alice", "hello", "hello"])
    assert (rebuild_url in page) == (role in CAN_BUILD)
    # A package without a source has nothing to rebuild.
    assert reverse("package-rebuild", args=["alice", "hello", "uploaded"]) not in page


def test_the_rows_rebuild_button_builds_the_package(client, alice, personal_project, settings):
    settings.SUBMIT_CHECK_URLS = False
    Package.objects.create(
        project=personal_project,
        name="hello",
        source_type="link",
        source_json={"url": "https://example.org/hello-1.0-1.src.rpm"},
    )
    client.force_login(alice)
    page = client.get(reverse("package-list", args=["alice", "hello"])).content.decode()
    assert 'name="csrfmiddlewaretoken" value="' in page
    response = client.post(reverse("package-rebuild", args=["alice", "hello", "hello"]))
    assert response.status_code == 302
    assert Build.objects.get().package.name == "hello"


def test_builds_list_shows_the_build_time(client, personal_project):
    build = BuildFactory(project=personal_project)
    Build.objects.filter(pk=build.pk).update(
        started_on=build.submitted_on, ended_on=build.submitted_on + timedelta(seconds=125)
    )
    page = client.get(reverse("build-list", args=["alice", "hello"])).content.decode()
    assert "<th>Build time</th>" in page
    assert "<td>2 min 5 s</td>" in page


def test_a_permission_request_mails_the_owner_and_admins(
    client, alice, personal_project, settings, django_capture_on_commit_callbacks
):
    admin = UserFactory(username="carol", email="carol@example.org")
    personal_project.permissions.create(user=admin, admin=PermissionLevel.APPROVED)
    bob = UserFactory(username="bob")
    client.force_login(bob)
    url = reverse("project-permissions", args=["alice", "hello"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"ask": "1", "builder": "on"})
    assert response.status_code == 302
    (message,) = mail.outbox
    assert sorted(message.to) == ["alice@example.org", "carol@example.org"]
    assert "bob asks for builder rights in alice/hello" in message.subject
    assert f"{settings.PUBLIC_URL}{url}" in message.body


def test_a_permission_request_rolled_back_mails_nobody(client, alice, personal_project):
    # Without the commit (the test's transaction is never committed) nothing is sent.
    client.force_login(UserFactory(username="bob"))
    client.post(
        reverse("project-permissions", args=["alice", "hello"]), {"ask": "1", "builder": "on"}
    )
    assert mail.outbox == []


def test_api_page_links_the_api_docs(client, alice):
    client.force_login(alice)
    page = client.get("/api/").content.decode()
    for name in ("v1-docs", "v1-redoc", "v1-schema"):
        assert f'href="{reverse(name)}"' in page
    assert client.get(reverse("v1-docs")).status_code == 200


def test_package_page_shows_its_source_as_labelled_lines(client, personal_project):
    Package.objects.create(
        project=personal_project,
        name="hello",
        source_type="scm",
        source_json={"clone_url": "https://example.org/hello.git", "committish": "v1"},
    )
    page = client.get(reverse("package-detail", args=["alice", "hello", "hello"])).content.decode()
    assert (
        '<tr><th>Clone URL</th><td><a href="https://example.org/hello.git" '
        'rel="nofollow noopener">https://example.org/hello.git</a></td></tr>'
    ) in page
    assert "<tr><th>Committish</th><td><code>v1</code></td></tr>" in page
