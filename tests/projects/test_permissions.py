"""The permission predicates, role by role (Copr's rules)."""

import pytest
from django.contrib.auth.models import AnonymousUser

from apps.projects.models import PermissionLevel, Project
from apps.projects.permissions import can_admin, can_build_in, can_edit, can_own_as
from tests.factories import GroupFactory, PermissionFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db

APPROVED = PermissionLevel.APPROVED
REQUEST = PermissionLevel.REQUEST


@pytest.fixture
def project():
    return ProjectFactory(owner_user=UserFactory(username="owner"))


@pytest.fixture
def group_project():
    group = GroupFactory(name="packagers")
    member = UserFactory(username="member")
    group.members.add(member)
    return ProjectFactory(owner_user=None, owner_group=group)


def role_user(role: str, project: Project):
    """A user in `role` towards `project`."""
    if role == "anonymous":
        return AnonymousUser()
    if role == "owner":
        return project.owner_user
    if role == "staff":
        return UserFactory(username="staff", is_staff=True)
    user = UserFactory(username=role)
    if role == "builder":
        PermissionFactory(project=project, user=user, builder=APPROVED)
    elif role == "admin":
        PermissionFactory(project=project, user=user, admin=APPROVED)
    elif role == "requested":
        PermissionFactory(project=project, user=user, builder=REQUEST, admin=REQUEST)
    return user


@pytest.mark.parametrize(
    ("role", "edit", "build"),
    [
        ("anonymous", False, False),
        ("other", False, False),
        ("requested", False, False),
        ("builder", False, True),
        ("admin", True, True),
        ("owner", True, True),
        ("staff", True, True),
    ],
)
def test_personal_project_roles(project, role, edit, build):
    user = role_user(role, project)
    assert can_edit(user, project) is edit
    assert can_admin(user, project) is edit
    assert can_build_in(user, project) is build
    assert (project in Project.objects.for_user(user)) is build


def test_group_member_can_edit_and_build(group_project):
    member = group_project.owner_group.members.get()
    assert can_edit(member, group_project)
    assert can_build_in(member, group_project)
    assert list(Project.objects.for_user(member)) == [group_project]


def test_non_member_cannot_touch_group_project(group_project):
    outsider = UserFactory(username="outsider")
    assert not can_edit(outsider, group_project)
    assert not can_build_in(outsider, group_project)
    assert not Project.objects.for_user(outsider).exists()


def test_disabled_owner_loses_rights(project):
    owner = project.owner_user
    owner.is_active = False
    owner.save()
    assert not can_edit(owner, project)
    assert not can_build_in(owner, project)


def test_for_user_lists_each_project_once(project):
    user = UserFactory(username="both")
    PermissionFactory(project=project, user=user, builder=APPROVED, admin=APPROVED)
    assert list(Project.objects.for_user(user)) == [project]


def test_can_own_as():
    group = GroupFactory(name="packagers")
    member = UserFactory(username="member")
    group.members.add(member)
    assert can_own_as(member, "member")
    assert can_own_as(member, "@packagers")
    assert not can_own_as(member, "someoneelse")
    assert not can_own_as(UserFactory(username="x"), "@packagers")
    assert can_own_as(UserFactory(username="root", is_staff=True), "anyone")
    assert not can_own_as(AnonymousUser(), "anyone")
