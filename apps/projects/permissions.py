"""Who may do what in a project; every view, API, admin and service asks here (Copr's rules).

- can_edit: change settings, chroots, packages, permissions; delete builds. Owner of a
  personal project, members of the owning @group, approved admins, staff.
- can_build_in: submit and cancel builds. Everyone who can edit, plus approved builders.
- can_admin: delete the project, decide on permission requests. Same as can_edit.
"""

from apps.projects.models import PermissionLevel, Project, ProjectPermission


def _active(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active)


def is_owner(user, project: Project) -> bool:
    if not _active(user):
        return False
    if project.owner_group_id:
        return project.owner_group.members.filter(pk=user.pk).exists()
    return project.owner_user_id == user.pk


def _permission(user, project: Project) -> ProjectPermission | None:
    return ProjectPermission.objects.filter(project=project, user=user).first()


def can_edit(user, project: Project) -> bool:
    if not _active(user):
        return False
    if user.is_staff or is_owner(user, project):
        return True
    permission = _permission(user, project)
    return permission is not None and permission.admin == PermissionLevel.APPROVED


def can_admin(user, project: Project) -> bool:
    return can_edit(user, project)


def can_build_in(user, project: Project) -> bool:
    if can_edit(user, project):
        return True
    if not _active(user):
        return False
    permission = _permission(user, project)
    return permission is not None and permission.builder == PermissionLevel.APPROVED


def can_own_as(user, ownername: str) -> bool:
    """May `user` create a project owned by `ownername` (themself or one of their @groups)?"""
    if not _active(user):
        return False
    if user.is_staff:
        return True
    if ownername.startswith("@"):
        return user.owner_groups.filter(name=ownername[1:]).exists()
    return ownername == user.username
