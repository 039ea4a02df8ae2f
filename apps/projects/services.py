"""Every write to projects, their chroots and permissions, and the chroot catalog."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.accounts.models import Group, User
from apps.core.errors import Conflict, NotFound, PermissionDenied, ServiceError
from apps.projects.models import Chroot, PermissionLevel, Project, ProjectChroot, ProjectPermission
from apps.projects.permissions import can_admin, can_edit, can_own_as

# Settings a user may change with project_create / project_edit.
EDITABLE_FIELDS = frozenset(
    {
        "homepage", "contact", "description", "instructions", "additional_repos", "devel_mode",
        "enable_net", "unlisted_on_hp", "auto_prune", "bootstrap", "bootstrap_image",
        "isolation", "follow_fedora_branching", "delete_after", "multilib", "module_hotfixes",
        "runtime_dependencies", "fedora_review", "appstream", "packit_forge_projects_allowed",
        "repo_priority",
    }
)  # fmt: skip
STAFF_ONLY_FIELDS = frozenset({"persistent"})


def project_create(
    *, user: User, ownername: str, name: str, chroot_names: list[str], **fields
) -> Project:
    """Create a project owned by `ownername` (the user or one of their @groups)."""
    if not can_own_as(user, ownername):
        raise PermissionDenied(f"You cannot create projects owned by {ownername}.")
    owner = owner_lookup(ownername)
    check_fields(user, fields, allowed=EDITABLE_FIELDS | STAFF_ONLY_FIELDS)
    chroots = chroots_lookup(chroot_names)
    project = Project(name=name, created_by=user, **owner, **fields)
    validate(project)
    try:
        with transaction.atomic():
            project.save()
            ProjectChroot.objects.bulk_create(
                [ProjectChroot(project=project, chroot=chroot) for chroot in chroots]
            )
            from apps.repos.services import project_key_request

            project_key_request(project=project)
    except IntegrityError as error:
        raise Conflict(f"Project {ownername}/{name} already exists.") from error
    return project


def project_edit(
    *, user: User, project: Project, chroot_names: list[str] | None = None, **fields
) -> Project:
    """Change project settings; `chroot_names`, when given, becomes the enabled set."""
    if not can_edit(user, project):
        raise PermissionDenied(f"You are not allowed to edit {project.full_name}.")
    check_fields(user, fields, allowed=EDITABLE_FIELDS | STAFF_ONLY_FIELDS)
    for field, value in fields.items():
        setattr(project, field, value)
    validate(project)
    with transaction.atomic():
        project.save()
        if chroot_names is not None:
            project_set_chroots(project=project, chroots=chroots_lookup(chroot_names))
    return project


def project_set_chroots(*, project: Project, chroots: list[Chroot]) -> None:
    wanted = {chroot.pk for chroot in chroots}
    ProjectChroot.objects.filter(project=project).exclude(chroot_id__in=wanted).delete()
    existing = set(project.project_chroots.values_list("chroot_id", flat=True))
    ProjectChroot.objects.bulk_create(
        [ProjectChroot(project=project, chroot_id=pk) for pk in wanted - existing]
    )


def project_delete(*, user: User, project: Project) -> None:
    """Delete a project with its builds and published results (not while builds run)."""
    from apps.builds.models import FINAL_STATES
    from apps.repos.services import project_results_remove

    if not can_admin(user, project):
        raise PermissionDenied(f"You are not allowed to delete {project.full_name}.")
    if project.persistent and not user.is_staff:
        raise PermissionDenied(f"{project.full_name} is persistent; only staff may delete it.")
    if project.builds.exclude(state__in=FINAL_STATES).exists():
        raise Conflict(f"{project.full_name} has unfinished builds; cancel them first.")
    project.delete()
    project_results_remove(project=project)


def owner_lookup(ownername: str) -> dict:
    if ownername.startswith("@"):
        group = Group.objects.filter(name=ownername[1:]).first()
        if group is None:
            raise NotFound(f"Group {ownername[1:]} does not exist.")
        return {"owner_group": group, "owner_user": None}
    user = User.objects.filter(username=ownername).first()
    if user is None:
        raise NotFound(f"User {ownername} does not exist.")
    return {"owner_user": user, "owner_group": None}


def chroots_lookup(names: list[str]) -> list[Chroot]:
    if not names:
        raise ServiceError("Choose at least one chroot.")
    found = {c.name: c for c in Chroot.objects.filter(name__in=names, is_active=True)}
    missing = [name for name in names if name not in found]
    if missing:
        raise ServiceError(f"Chroot {', '.join(missing)} does not exist or is not active.")
    return [found[name] for name in dict.fromkeys(names)]


def check_fields(user: User, fields: dict, *, allowed: frozenset) -> None:
    unknown = set(fields) - allowed
    if unknown:
        raise ServiceError(f"Unknown project setting(s): {', '.join(sorted(unknown))}.")
    if not user.is_staff and STAFF_ONLY_FIELDS & set(fields):
        raise PermissionDenied("Only staff can make projects persistent.")
    if not user.is_staff and fields.get("auto_prune") is False:
        raise PermissionDenied("Only staff can turn off auto-pruning.")


def validate(project: Project) -> None:
    try:
        project.full_clean(exclude=["owner_user", "owner_group", "created_by", "forked_from"])
    except ValidationError as error:
        raise ServiceError(
            "\n".join(f"{field}: {' '.join(msgs)}" for field, msgs in error.message_dict.items())
        ) from error


def permission_set(
    *, user: User, project: Project, target: User, builder: str | None, admin: str | None
) -> ProjectPermission:
    """Set builder/admin rights of `target` (project admins only; not for the owner)."""
    if not can_admin(user, project):
        raise PermissionDenied(f"You are not allowed to change permissions of {project.full_name}.")
    if project.owner_user_id == target.pk:
        raise ServiceError(f"{target.username} owns {project.full_name}; owners have all rights.")
    levels = {k: v for k, v in {"builder": builder, "admin": admin}.items() if v is not None}
    if any(value not in PermissionLevel.values for value in levels.values()):
        raise ServiceError(f"Permission levels are {', '.join(PermissionLevel.values)}.")
    permission, _ = ProjectPermission.objects.update_or_create(
        project=project, user=target, defaults=levels
    )
    return permission


def chroot_set_active(*, chroot_ids: list[int], active: bool) -> int:
    """Activate or deactivate chroots; inactive ones take no new builds. Returns the count."""
    return Chroot.objects.filter(pk__in=chroot_ids).update(is_active=active)


def chroot_mark_end_of_life(*, chroot_ids: list[int]) -> int:
    """End of life: no new builds, existing repositories stay published."""
    return Chroot.objects.filter(pk__in=chroot_ids).update(is_active=False, end_of_life=True)
