"""Who sees and who may change what, role by role, through the Django test client."""

import pytest
from django.urls import reverse

from apps.builds.models import Build, State
from apps.projects.models import Project
from tests.factories import BuildFactory, BuildTaskFactory, chroot
from tests.web.conftest import ROLES, settings_post, user_in_role

pytestmark = pytest.mark.django_db

CAN_EDIT = {"admin", "owner", "member", "staff"}
CAN_BUILD = CAN_EDIT | {"builder"}


def expected_roles(allowed: set[str], project: Project) -> set[str]:
    # On a personal project "member" is just another user: there is no group to be in.
    return allowed if project.owner_group_id else allowed - {"member"}


@pytest.fixture(params=["personal", "group"])
def project(request, personal_project, group_project) -> Project:
    return personal_project if request.param == "personal" else group_project


@pytest.fixture
def build(project):
    build = BuildFactory(project=project, state=State.RUNNING, package_name="hello")
    BuildTaskFactory(build=build, chroot=None, state=State.SUCCEEDED, result_dir="srpm-builds/x")
    BuildTaskFactory(build=build, chroot=chroot("fedora-43-x86_64"), state=State.RUNNING)
    return build


def names(project: Project) -> tuple[str, str]:
    return project.ownername, project.name


def public_urls(project: Project, build: Build) -> list[str]:
    return [
        reverse("home"),
        reverse("project-list"),
        reverse("owner-projects", args=[project.ownername]),
        reverse("project-detail", args=names(project)),
        reverse("build-list", args=names(project)),
        reverse("build-detail", args=[build.pk]),
        reverse("project-build-detail", args=[*names(project), build.pk]),
        reverse("build-state", args=[build.pk]),
        reverse("package-list", args=names(project)),
        reverse("project-permissions", args=names(project)),
        reverse("status"),
        reverse("search") + "?q=hello",
    ]


def write_pages(project: Project) -> list[str]:
    return [
        reverse("project-settings", args=names(project)),
        reverse("project-delete", args=names(project)),
        reverse("build-new", args=names(project)),
        reverse("build-new-type", args=[*names(project), "scm"]),
    ]


def test_anonymous_users_browse_every_public_page(client, project, build):
    for url in public_urls(project, build):
        response = client.get(url)
        assert response.status_code == 200, url


def test_anonymous_users_are_asked_to_log_in_for_every_write(client, project, build):
    login = reverse("login")
    posts = [
        *write_pages(project),
        reverse("project-new"),
        reverse("build-cancel", args=[build.pk]),
        reverse("build-delete", args=[build.pk]),
        reverse("project-permissions", args=names(project)),
    ]
    for url in [*write_pages(project), reverse("project-new")]:
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith(login), url
    for url in posts:
        response = client.post(url, {"description": "defaced", "ask": "1", "builder": "on"})
        assert response.status_code == 302 and response.url.startswith(login), url
    project.refresh_from_db()
    assert project.description == ""
    assert Build.objects.get(pk=build.pk).state == State.RUNNING
    assert not project.permissions.exists()


@pytest.mark.parametrize("role", ROLES[1:])
def test_settings_page_only_for_those_who_can_edit(client_as, project, role):
    client = client_as(user_in_role(role, project))
    url = reverse("project-settings", args=names(project))
    allowed = role in expected_roles(CAN_EDIT, project)
    assert client.get(url).status_code == (200 if allowed else 403)
    response = client.post(url, settings_post(project, description="changed"))
    project.refresh_from_db()
    if allowed:
        assert response.status_code == 302
        assert project.description == "changed"
    else:
        assert response.status_code == 403
        assert project.description == ""


@pytest.mark.parametrize("role", ROLES[1:])
def test_new_build_form_only_for_those_who_can_build(client_as, project, role):
    client = client_as(user_in_role(role, project))
    allowed = role in expected_roles(CAN_BUILD, project)
    for source_type in ("upload", "link", "scm", "pypi", "rubygems", "custom", "distgit"):
        url = reverse("build-new-type", args=[*names(project), source_type])
        assert client.get(url).status_code == (200 if allowed else 403), source_type
    response = client.post(
        reverse("build-new-type", args=[*names(project), "link"]),
        {"url": "https://example.org/hello-1.0-1.src.rpm"},
    )
    assert response.status_code == (302 if allowed else 403)
    assert Build.objects.filter(source_type="link", project=project).exists() == allowed


@pytest.mark.parametrize("role", ROLES)
def test_buttons_show_only_what_the_user_may_do(client_as, project, build, role):
    user = user_in_role(role, project)
    client = client_as(user)
    overview = client.get(reverse("project-detail", args=names(project))).content.decode()
    build_page = client.get(reverse("build-detail", args=[build.pk])).content.decode()
    settings_url = reverse("project-settings", args=names(project))
    new_build_url = reverse("build-new", args=names(project))
    cancel_url = reverse("build-cancel", args=[build.pk])
    assert (settings_url in overview) == (role in expected_roles(CAN_EDIT, project))
    assert (new_build_url in overview) == (role in expected_roles(CAN_BUILD, project))
    assert (cancel_url in build_page) == (role in expected_roles(CAN_BUILD, project))


@pytest.mark.parametrize("role", ROLES[1:])
def test_cancel_and_delete_follow_the_rules(client_as, project, build, role):
    client = client_as(user_in_role(role, project))
    response = client.post(reverse("build-cancel", args=[build.pk]))
    may_build = role in expected_roles(CAN_BUILD, project)
    assert response.status_code == (302 if may_build else 403)
    build.refresh_from_db()
    assert build.canceled == may_build
    response = client.post(reverse("build-delete", args=[build.pk]))
    may_edit = role in expected_roles(CAN_EDIT, project)
    assert response.status_code == (302 if may_edit else 403)
    assert Build.objects.filter(pk=build.pk).exists() != may_edit


@pytest.mark.parametrize("role", ROLES[1:])
def test_only_project_admins_decide_on_permissions(client_as, project, role):
    from tests.factories import UserFactory

    asking = UserFactory(username="asking")
    client_as(asking).post(
        reverse("project-permissions", args=names(project)), {"ask": "1", "builder": "on"}
    )
    client = client_as(user_in_role(role, project))
    response = client.post(
        reverse("project-permissions", args=names(project)),
        {"decide": "1", f"builder_{asking.pk}": "approved", f"admin_{asking.pk}": "nothing"},
    )
    allowed = role in expected_roles(CAN_EDIT, project)
    assert response.status_code == (302 if allowed else 403)
    level = project.permissions.get(user=asking).builder
    assert level == ("approved" if allowed else "request")


def test_non_members_cannot_create_projects_for_a_group(client_as, packagers):
    from tests.factories import UserFactory

    client = client_as(UserFactory(username="outsider"))
    response = client.post(
        reverse("project-new"),
        {"owner": "@packagers", "name": "sneaky", "chroots": ["fedora-43-x86_64"]},
    )
    assert response.status_code == 400
    assert not Project.objects.filter(name="sneaky").exists()
