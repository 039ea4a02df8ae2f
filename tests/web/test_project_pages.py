"""Per-chroot settings, fork and integrations pages, role by role, through their forms."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from apps.packages.models import Package, SourceType
from apps.projects.models import Project, ProjectChroot
from tests.factories import UserFactory
from tests.web.conftest import ROLES, user_in_role

pytestmark = pytest.mark.django_db

CAN_EDIT = {"admin", "owner", "member", "staff"}
CHROOT = "fedora-43-x86_64"


def allowed_roles(allowed: set[str], project: Project) -> set[str]:
    # On a personal project "member" is just another user: there is no group to be in.
    return allowed if project.owner_group_id else allowed - {"member"}


@pytest.fixture(params=["personal", "group"])
def project(request, personal_project, group_project) -> Project:
    return personal_project if request.param == "personal" else group_project


def project_url(name: str, project: Project, *extra) -> str:
    return reverse(name, args=[project.ownername, project.name, *extra])


def chroot_post(**changes) -> dict:
    """The chroot form as a browser posts it (fields prefixed with the chroot's name)."""
    data = {"bootstrap": "unchanged", "isolation": "unchanged", **changes}
    return {f"{CHROOT}-{key}": value for key, value in data.items()}


def project_chroot(project: Project) -> ProjectChroot:
    return ProjectChroot.objects.get(project=project, chroot__name=CHROOT)


# --- per-chroot settings ---------------------------------------------------------------------


def test_anonymous_users_are_sent_to_log_in(client, project):
    login = reverse("login")
    pages = [
        project_url("project-chroot-settings", project, CHROOT),
        project_url("project-fork", project),
        project_url("project-integrations", project),
    ]
    secret = str(project.webhook_secret)
    for page in pages:
        for response in (client.get(page), client.post(page, chroot_post(with_opts="x"))):
            assert response.status_code == 302 and response.url.startswith(login), page
    response = client.post(project_url("project-fork", project), {"owner": "x", "name": "f"})
    assert response.status_code == 302
    project.refresh_from_db()
    assert project.webhook_secret == secret
    assert project_chroot(project).with_opts == []
    assert Project.objects.count() == 2


@pytest.mark.parametrize("role", ROLES[1:])
def test_chroot_settings_need_edit_rights(client_as, project, role):
    client = client_as(user_in_role(role, project))
    allowed = role in allowed_roles(CAN_EDIT, project)
    page = project_url("project-chroot-settings", project, CHROOT)
    assert client.get(page).status_code == (200 if allowed else 403)
    response = client.post(
        page,
        chroot_post(
            additional_packages="gcc make",
            additional_repos="https://example.org/repo\ncopr://bob/lib",
            additional_modules="nodejs:20, !ruby:3.1",
            with_opts="tests",
            without_opts="docs bootstrap",
            bootstrap="off",
            isolation="simple",
        ),
    )
    assert response.status_code == (302 if allowed else 403)
    settings = project_chroot(project)
    if not allowed:
        assert settings.additional_packages == [] and settings.bootstrap == "unchanged"
        return
    assert response.url == project_url("project-settings", project) + "#chroots"
    assert settings.additional_packages == ["gcc", "make"]
    assert settings.additional_repos == ["https://example.org/repo", "copr://bob/lib"]
    assert settings.additional_modules == ["nodejs:20", "!ruby:3.1"]
    assert (settings.with_opts, settings.without_opts) == (["tests"], ["docs", "bootstrap"])
    assert (settings.bootstrap, settings.isolation) == ("off", "simple")


def test_the_settings_page_has_a_form_per_chroot(client, alice, personal_project):
    client.force_login(alice)
    html = client.get(project_url("project-settings", personal_project)).content.decode()
    for name in ("fedora-43-x86_64", "fedora-43-aarch64"):
        assert project_url("project-chroot-settings", personal_project, name) in html
        assert f'name="{name}-additional_packages"' in html
    assert 'enctype="multipart/form-data"' in html


def test_comps_are_uploaded_and_removed(client, alice, personal_project):
    client.force_login(alice)
    page = project_url("project-chroot-settings", personal_project, CHROOT)
    comps = SimpleUploadedFile("comps.xml", b"<comps><group><id>tools</id></group></comps>")
    assert client.post(page, chroot_post(comps=comps)).status_code == 302
    settings = project_chroot(personal_project)
    assert settings.comps_name == "comps.xml" and "<id>tools</id>" in settings.comps
    assert client.post(page, chroot_post(delete_comps="on")).status_code == 302
    assert project_chroot(personal_project).comps == ""


def test_bad_chroot_input_re_renders_and_changes_nothing(client, alice, personal_project):
    client.force_login(alice)
    page = project_url("project-chroot-settings", personal_project, CHROOT)
    response = client.post(page, chroot_post(bootstrap="custom_image", with_opts="x"))
    assert response.status_code == 400
    assert "needs the image name" in response.content.decode()
    binary = SimpleUploadedFile("comps.xml", b"\xff\xfe\x00bad")
    response = client.post(page, chroot_post(comps=binary, with_opts="x"))
    assert response.status_code == 400
    assert "UTF-8" in response.content.decode()
    response = client.post(page, chroot_post(bootstrap_image="x" * 201, bootstrap="image"))
    assert response.status_code == 400
    settings = project_chroot(personal_project)
    assert settings.with_opts == [] and settings.bootstrap == "unchanged" and not settings.comps


def test_a_chroot_not_enabled_in_the_project_is_not_found(client, alice, personal_project):
    client.force_login(alice)
    page = project_url("project-chroot-settings", personal_project, "fedora-44-x86_64")
    assert client.get(page).status_code == 404


# --- fork ------------------------------------------------------------------------------------


def test_any_user_forks_into_their_own_namespace(client_as, personal_project):
    Package.objects.create(
        project=personal_project,
        name="hello",
        source_type=SourceType.SCM,
        source_json={"clone_url": "https://example.org/hello.git"},
        webhook_rebuild=True,
    )
    bob = UserFactory(username="bob")
    client = client_as(bob)
    form = client.get(project_url("project-fork", personal_project)).content.decode()
    assert '<option value="bob" selected>' in form
    response = client.post(
        project_url("project-fork", personal_project), {"owner": "bob", "name": "hello-fork"}
    )
    assert response.status_code == 302
    assert response.url == reverse("project-detail", args=["bob", "hello-fork"])
    fork = Project.objects.get(owner_user=bob, name="hello-fork")
    assert fork.forked_from == personal_project
    forked_package = fork.packages.get()
    assert forked_package.name == "hello" and not forked_package.webhook_rebuild
    page = client.get(response.url).content.decode()
    assert "Forked alice/hello into bob/hello-fork: 1 package(s)" in page
    assert reverse("project-detail", args=["alice", "hello"]) in page


def test_members_fork_into_their_group(client, personal_project, packagers):
    member = UserFactory(username="member")
    packagers.members.add(member)
    client.force_login(member)
    form = client.get(project_url("project-fork", personal_project)).content.decode()
    assert '<option value="@packagers">' in form
    response = client.post(
        project_url("project-fork", personal_project), {"owner": "@packagers", "name": "hello"}
    )
    assert response.status_code == 302
    assert Project.objects.get(owner_group=packagers, name="hello").forked_from == personal_project


def test_nobody_forks_into_a_group_they_are_not_in(client, personal_project, packagers):
    client.force_login(UserFactory(username="outsider"))
    response = client.post(
        project_url("project-fork", personal_project), {"owner": "@packagers", "name": "x"}
    )
    assert response.status_code == 400
    assert not Project.objects.filter(name="x").exists()


def test_forking_into_an_existing_project_needs_confirmation(client, alice, personal_project):
    client.force_login(alice)
    page = project_url("project-fork", personal_project)
    response = client.post(page, {"owner": "alice", "name": "hello"})
    assert response.status_code == 400
    assert "fork into existing project: alice/hello" in response.content.decode()
    assert (
        "cannot be forked into itself"
        in client.post(page, {"owner": "alice", "name": "hello", "confirm": "on"}).content.decode()
    )
    response = client.post(page, {"owner": "alice", "name": "bad name"})
    assert response.status_code == 400
    assert Project.objects.count() == 1
    assert client.post(page, {"owner": "alice", "name": "copy"}).status_code == 302
    response = client.post(page, {"owner": "alice", "name": "copy"})
    assert response.status_code == 400
    response = client.post(page, {"owner": "alice", "name": "copy", "confirm": "on"})
    assert response.status_code == 302
    assert "Forked again alice/hello into alice/copy" in client.get(response.url).content.decode()


def test_forking_into_someone_elses_project_is_refused(client, personal_project):
    client.force_login(UserFactory(username="bob"))
    response = client.post(
        project_url("project-fork", personal_project),
        {"owner": "alice", "name": "hello", "confirm": "on"},
    )
    assert response.status_code == 400  # alice is not among bob's owner choices
    assert Project.objects.count() == 1


# --- integrations ----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES[1:])
def test_integrations_only_for_editors(client_as, project, role):
    client = client_as(user_in_role(role, project))
    allowed = role in allowed_roles(CAN_EDIT, project)
    page = project_url("project-integrations", project)
    secret = str(project.webhook_secret)
    response = client.get(page)
    assert response.status_code == (200 if allowed else 403)
    assert (secret in response.content.decode()) == allowed
    response = client.post(page, {"regenerate": "1"})
    assert response.status_code == (302 if allowed else 403)
    project.refresh_from_db()
    assert (project.webhook_secret != secret) == allowed


def test_integrations_list_every_webhook_url(client, alice, personal_project):
    client.force_login(alice)
    html = client.get(project_url("project-integrations", personal_project)).content.decode()
    base = (
        f"http://testserver/webhooks/{{}}/{personal_project.pk}/{personal_project.webhook_secret}"
    )
    for forge in ("github", "gitlab", "bitbucket", "pagure"):
        assert base.format(forge) + "/" in html, forge
    assert base.format("custom") + "/PACKAGE_NAME/" in html
    for title in ("GitHub", "GitLab", "Bitbucket", "Pagure", "Custom"):
        assert f"<td>{title}</td>" in html


def test_the_shown_urls_work_until_the_secret_is_regenerated(client, alice, personal_project):
    client.force_login(alice)
    page = project_url("project-integrations", personal_project)
    github_url = dict(client.get(page).context["webhooks"])["GitHub"]
    path = github_url.removeprefix("http://testserver")

    def ping():
        return Client().post(
            path, data="{}", content_type="application/json", headers={"X-GitHub-Event": "ping"}
        )

    assert ping().status_code == 200
    assert client.post(page).status_code == 302
    assert ping().status_code == 403
    new_url = dict(client.get(page).context["webhooks"])["GitHub"]
    assert new_url != github_url


def test_the_secret_form_needs_the_csrf_token(alice, personal_project):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    secret = str(personal_project.webhook_secret)
    assert client.post(project_url("project-integrations", personal_project)).status_code == 403
    personal_project.refresh_from_db()
    assert personal_project.webhook_secret == secret


@pytest.mark.parametrize("role", ROLES)
def test_project_tabs_show_only_what_the_user_may_do(client_as, project, role):
    client = client_as(user_in_role(role, project))
    html = client.get(project_url("project-detail", project)).content.decode()
    may_edit = role in allowed_roles(CAN_EDIT, project)
    assert (project_url("project-integrations", project) in html) == may_edit
    assert (project_url("project-fork", project) in html) == (role != "anonymous")
