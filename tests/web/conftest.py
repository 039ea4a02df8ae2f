"""Fixtures for the portal's page tests: a personal and an @group project, users by role."""

import pytest

from apps.projects.models import PermissionLevel, Project
from tests.factories import GroupFactory, PermissionFactory, ProjectFactory, UserFactory

ROLES = ("anonymous", "other", "builder", "admin", "owner", "member", "staff")
APPROVED = PermissionLevel.APPROVED


@pytest.fixture(autouse=True)
def isolated_storage(settings, tmp_path):
    settings.UPLOADS_ROOT = tmp_path / "uploads"
    settings.RESULTS_ROOT = tmp_path / "results"
    settings.KEYS_ROOT = tmp_path / "keys"
    settings.SUBMIT_CHECK_URLS = False


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


@pytest.fixture
def personal_project(alice) -> Project:
    return ProjectFactory(
        owner_user=alice, name="hello", chroot_names=["fedora-43-x86_64", "fedora-43-aarch64"]
    )


@pytest.fixture
def packagers(db):
    return GroupFactory(name="packagers")


@pytest.fixture
def group_project(packagers) -> Project:
    return ProjectFactory(owner_user=None, owner_group=packagers, name="tools")


def user_in_role(role: str, project: Project):
    """A user standing in `role` towards `project`; None for anonymous."""
    if role == "anonymous":
        return None
    if role == "owner":
        if project.owner_group_id:
            return user_in_role("member", project)
        return project.owner_user
    if role == "staff":
        return UserFactory(username="staff", is_staff=True)
    user = UserFactory(username=role)
    if role == "builder":
        PermissionFactory(project=project, user=user, builder=APPROVED)
    elif role == "admin":
        PermissionFactory(project=project, user=user, admin=APPROVED)
    elif role == "member" and project.owner_group_id:
        project.owner_group.members.add(user)
    return user


@pytest.fixture
def client_as(client):
    """The Django test client logged in as `user` (anonymous for None)."""

    def log_in(user):
        if user is not None:
            client.force_login(user)
        return client

    return log_in


def settings_post(project: Project, **changes) -> dict:
    """The settings form as a browser posts it for `project`, with `changes` applied."""
    from apps.projects.forms import ProjectSettingsForm
    from apps.projects.pages import projects_for_list

    initial = ProjectSettingsForm.initial_for(projects_for_list().get(pk=project.pk))
    initial.update(changes)
    # Browsers leave out unticked boxes and send empty strings for empty fields.
    return {
        key: ("" if value is None else value)
        for key, value in initial.items()
        if value is not False
    }


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Factories set a password on every user; the default hasher would take most of a test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
