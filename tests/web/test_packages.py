"""Package pages: add, edit, rebuild, reset and delete through their forms, role by role."""

import pytest
from django.test import Client
from django.urls import reverse

from apps.builds.models import Build, State
from apps.packages.models import Package, SourceType
from apps.projects.models import Project
from tests.factories import BuildFactory
from tests.web.conftest import ROLES, user_in_role

pytestmark = pytest.mark.django_db

CAN_EDIT = {"admin", "owner", "member", "staff"}
CAN_BUILD = CAN_EDIT | {"builder"}
CLONE_URL = "https://example.org/hello.git"
SCM_FORM = {
    "type": "git",
    "clone_url": CLONE_URL,
    "committish": "main",
    "subdirectory": "",
    "spec": "hello.spec",
    "srpm_build_method": "rpkg",
}


def allowed_roles(allowed: set[str], project: Project) -> set[str]:
    # On a personal project "member" is just another user: there is no group to be in.
    return allowed if project.owner_group_id else allowed - {"member"}


@pytest.fixture(params=["personal", "group"])
def project(request, personal_project, group_project) -> Project:
    return personal_project if request.param == "personal" else group_project


@pytest.fixture
def package(project) -> Package:
    return Package.objects.create(
        project=project,
        name="hello",
        source_type=SourceType.SCM,
        source_json={"type": "git", "clone_url": CLONE_URL, "srpm_build_method": "rpkg"},
    )


def url(name: str, package: Package, *extra) -> str:
    project = package.project
    return reverse(name, args=[project.ownername, project.name, package.name, *extra])


def project_url(name: str, project: Project, *extra) -> str:
    return reverse(name, args=[project.ownername, project.name, *extra])


# --- by role ---------------------------------------------------------------------------------


def test_anonymous_users_are_sent_to_log_in_and_change_nothing(client, package):
    login = reverse("login")
    project = package.project
    gets = [
        project_url("package-new", project),
        project_url("package-new-type", project, "pypi"),
        url("package-edit", package),
        url("package-delete", package),
    ]
    for page in gets:
        response = client.get(page)
        assert response.status_code == 302 and response.url.startswith(login), page
    posts = [
        (project_url("package-new-type", project, "scm"), {**SCM_FORM, "name": "sneaky"}),
        (url("package-edit-type", package, "scm"), {**SCM_FORM, "committish": "evil"}),
        (url("package-rebuild", package), {}),
        (url("package-reset", package), {}),
        (url("package-delete", package), {}),
    ]
    for page, data in posts:
        response = client.post(page, data)
        assert response.status_code == 302 and response.url.startswith(login), page
    package.refresh_from_db()
    assert list(Package.objects.filter(project=project)) == [package]
    assert package.source_type == SourceType.SCM and "committish" not in package.source_json
    assert not Build.objects.exists()


@pytest.mark.parametrize("role", ROLES[1:])
def test_adding_a_package_needs_edit_rights(client_as, project, role):
    client = client_as(user_in_role(role, project))
    allowed = role in allowed_roles(CAN_EDIT, project)
    for source_type in ("link", "scm", "pypi", "rubygems", "custom", "distgit"):
        page = project_url("package-new-type", project, source_type)
        assert client.get(page).status_code == (200 if allowed else 403), source_type
    response = client.post(
        project_url("package-new-type", project, "scm"),
        {**SCM_FORM, "name": "hello", "webhook_rebuild": "on", "chroot_denylist": "*-aarch64"},
    )
    assert response.status_code == (302 if allowed else 403)
    created = Package.objects.filter(project=project, name="hello").first()
    if not allowed:
        assert created is None
        return
    assert response.url == url("package-detail", created)
    assert created.source_type == SourceType.SCM
    assert created.source_json["clone_url"] == CLONE_URL
    assert created.source_json["committish"] == "main"
    assert created.webhook_rebuild and created.chroot_denylist == ["*-aarch64"]


@pytest.mark.parametrize("role", ROLES[1:])
def test_editing_a_package_needs_edit_rights(client_as, package, role):
    project = package.project
    client = client_as(user_in_role(role, project))
    allowed = role in allowed_roles(CAN_EDIT, project)
    assert client.get(url("package-edit", package)).status_code == (200 if allowed else 403)
    response = client.post(
        url("package-edit-type", package, "scm"),
        {**SCM_FORM, "committish": "v2", "max_builds": "5", "timeout": "7200"},
    )
    assert response.status_code == (302 if allowed else 403)
    package.refresh_from_db()
    assert (package.source_json.get("committish") == "v2") == allowed
    assert (package.max_builds, package.timeout) == ((5, 7200) if allowed else (None, None))


@pytest.mark.parametrize("role", ROLES[1:])
def test_builders_rebuild_packages_but_do_not_change_them(client_as, package, role):
    project = package.project
    client = client_as(user_in_role(role, project))
    may_build = role in allowed_roles(CAN_BUILD, project)
    response = client.post(url("package-rebuild", package))
    assert response.status_code == (302 if may_build else 403)
    build = Build.objects.filter(package=package).first()
    assert (build is not None) == may_build
    if may_build:
        assert response.url == reverse("build-detail", args=[build.pk])
        assert build.source_type == SourceType.SCM
        assert build.source_json["clone_url"] == CLONE_URL
    may_edit = role in allowed_roles(CAN_EDIT, project)
    response = client.post(url("package-reset", package))
    assert response.status_code == (302 if may_edit else 403)
    package.refresh_from_db()
    assert (package.source_type == SourceType.UNSET) == may_edit


@pytest.mark.parametrize("role", ROLES[1:])
def test_deleting_a_package_needs_edit_rights(client_as, package, role):
    project = package.project
    BuildFactory(project=project, package=package, state=State.SUCCEEDED)
    client = client_as(user_in_role(role, project))
    allowed = role in allowed_roles(CAN_EDIT, project)
    assert client.get(url("package-delete", package)).status_code == (200 if allowed else 403)
    response = client.post(url("package-delete", package))
    assert response.status_code == (302 if allowed else 403)
    assert Package.objects.filter(pk=package.pk).exists() != allowed
    assert Build.objects.filter(project=project).exists() != allowed


@pytest.mark.parametrize("role", ROLES)
def test_package_pages_link_only_to_what_the_user_may_do(client_as, package, role):
    project = package.project
    client = client_as(user_in_role(role, project))
    detail = client.get(url("package-detail", package)).content.decode()
    listing = client.get(project_url("package-list", project)).content.decode()
    may_edit = role in allowed_roles(CAN_EDIT, project)
    may_build = role in allowed_roles(CAN_BUILD, project)
    assert (url("package-edit", package) in detail) == may_edit
    assert (url("package-reset", package) in detail) == may_edit
    assert (url("package-delete", package) in detail) == may_edit
    assert (url("package-rebuild", package) in detail) == may_build
    assert (project_url("package-new", project) in listing) == may_edit


# --- forms and messages ----------------------------------------------------------------------


@pytest.fixture
def owner_client(client, alice, personal_project):
    client.force_login(alice)
    return client


def test_the_add_form_shows_the_fields_of_the_new_build_form(owner_client, personal_project):
    for source_type, field in [("pypi", "pypi_package_name"), ("custom", "script")]:
        page = owner_client.get(project_url("package-new-type", personal_project, source_type))
        html = page.content.decode()
        assert f'name="{field}"' in html and 'name="name"' in html
        assert 'name="webhook_rebuild"' in html and "Auto-rebuild" in html
        assert "csrfmiddlewaretoken" in html
    # An upload is one build's file, not a package's default source.
    page = owner_client.get(project_url("package-new-type", personal_project, "upload"))
    assert page.status_code == 404


def test_a_bad_source_shows_the_services_message_and_adds_nothing(owner_client, personal_project):
    response = owner_client.post(
        project_url("package-new-type", personal_project, "scm"),
        {**SCM_FORM, "name": "hello", "clone_url": "file:///etc"},
    )
    assert response.status_code == 400
    assert "clone_url must be a remote repository URL" in response.content.decode()
    assert not Package.objects.exists()


def test_a_bad_name_or_number_is_a_field_error(owner_client, personal_project):
    page = project_url("package-new-type", personal_project, "scm")
    response = owner_client.post(page, {**SCM_FORM, "name": "no spaces"})
    assert response.status_code == 400
    assert "Please enter a valid package name in" in response.content.decode()
    response = owner_client.post(page, {**SCM_FORM, "name": "hello", "max_builds": "1000"})
    assert response.status_code == 400
    assert not Package.objects.exists()


def test_a_taken_name_is_a_conflict(owner_client, personal_project):
    Package.objects.create(project=personal_project, name="hello")
    response = owner_client.post(
        project_url("package-new-type", personal_project, "rubygems"),
        {"name": "hello", "gem_name": "hello"},
    )
    assert response.status_code == 409
    assert "already exists" in response.content.decode()
    assert Package.objects.get(name="hello").source_type == SourceType.UNSET


def test_every_package_source_type_is_added_through_its_form(owner_client, personal_project):
    from apps.packages.models import DistGitInstance

    DistGitInstance.objects.create(name="fedora", clone_url="https://src.example.org")
    forms = {
        "link": {"url": "https://example.org/hello-1.0-1.src.rpm"},
        "pypi": {"pypi_package_name": "requests", "spec_generator": "pyp2spec"},
        "rubygems": {"gem_name": "rake"},
        "custom": {"script": "#!/bin/sh\r\necho hi\r\n", "chroot": "fedora-latest-x86_64"},
        "distgit": {"distgit": "fedora", "namespace": "", "committish": ""},
    }
    for source_type, data in forms.items():
        response = owner_client.post(
            project_url("package-new-type", personal_project, source_type),
            {**data, "name": f"p-{source_type}", "python_versions": ["3"]},
        )
        assert response.status_code == 302, (source_type, response.content.decode()[:2000])
        created = Package.objects.get(name=f"p-{source_type}")
        assert created.source_type == source_type
    assert Package.objects.get(name="p-custom").source_json["script"] == "#!/bin/sh\necho hi\n"
    # A DistGit package's repository is named after the package when left empty.
    assert Package.objects.get(name="p-distgit").source_json["package_name"] == "p-distgit"


def test_changing_the_source_type_drops_the_old_settings(owner_client, personal_project):
    package = Package.objects.create(
        project=personal_project,
        name="hello",
        source_type=SourceType.SCM,
        source_json={"clone_url": CLONE_URL, "type": "git"},
        webhook_rebuild=True,
    )
    page = owner_client.get(url("package-edit-type", package, "pypi")).content.decode()
    assert CLONE_URL not in page and "checked" in page  # auto-rebuild stays ticked
    response = owner_client.post(
        url("package-edit-type", package, "pypi"),
        {"pypi_package_name": "hello", "spec_generator": "pyp2spec", "webhook_rebuild": "on"},
    )
    assert response.status_code == 302
    package.refresh_from_db()
    assert package.source_type == SourceType.PYPI
    assert "clone_url" not in package.source_json
    assert package.source_json["pypi_package_name"] == "hello"


def test_a_bad_edit_changes_nothing(owner_client, personal_project):
    package = Package.objects.create(
        project=personal_project,
        name="hello",
        source_type=SourceType.SCM,
        source_json={"clone_url": CLONE_URL, "type": "git"},
    )
    response = owner_client.post(
        url("package-edit-type", package, "scm"), {**SCM_FORM, "committish": "-rf"}
    )
    assert response.status_code == 400
    assert "Invalid committish" in response.content.decode()
    package.refresh_from_db()
    assert package.source_json == {"clone_url": CLONE_URL, "type": "git"}


def test_rebuilding_a_package_without_source_shows_why(owner_client, personal_project):
    package = Package.objects.create(project=personal_project, name="hello")
    response = owner_client.post(url("package-rebuild", package))
    assert response.status_code == 400
    assert "has no source" in response.content.decode()
    assert not Build.objects.exists()


def test_a_package_with_a_running_build_is_not_deleted(owner_client, personal_project):
    package = Package.objects.create(project=personal_project, name="hello")
    build = BuildFactory(project=personal_project, package=package, state=State.RUNNING)
    response = owner_client.post(url("package-delete", package))
    assert response.status_code == 409
    assert f"unfinished builds ({build.pk})" in response.content.decode()
    assert Package.objects.filter(pk=package.pk).exists()


def test_the_package_page_shows_source_and_latest_builds(client, personal_project):
    package = Package.objects.create(
        project=personal_project,
        name="hello",
        source_type=SourceType.SCM,
        source_json={"clone_url": CLONE_URL, "type": "git"},
    )
    good = BuildFactory(project=personal_project, package=package, package_version="1.0-1")
    newest = BuildFactory(
        project=personal_project, package=package, package_version="1.1-1", state=State.FAILED
    )
    response = client.get(url("package-detail", package))
    assert response.context["latest"] == newest
    assert response.context["latest_succeeded"] == good
    html = response.content.decode()
    assert CLONE_URL in html and "SCM" in html.upper()
    assert reverse("build-detail", args=[newest.pk]) in html
    assert reverse("build-detail", args=[good.pk]) in html


def test_package_forms_need_the_csrf_token(alice, personal_project):
    package = Package.objects.create(
        project=personal_project, name="hello", source_type=SourceType.SCM, source_json=SCM_FORM
    )
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    for page in (url("package-rebuild", package), url("package-reset", package)):
        assert client.post(page).status_code == 403
    response = client.post(
        project_url("package-new-type", personal_project, "scm"), {**SCM_FORM, "name": "x"}
    )
    assert response.status_code == 403
    assert not Build.objects.exists() and Package.objects.count() == 1


def test_a_too_long_package_name_says_so_as_copr_does(owner_client, personal_project):
    page = project_url("package-new-type", personal_project, "scm")
    response = owner_client.post(page, {**SCM_FORM, "name": "p" * 101})
    assert response.status_code == 400
    assert "Too long package name" in response.content.decode()
    assert not Package.objects.exists()
