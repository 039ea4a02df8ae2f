"""Every write to projects, their chroots and permissions, and the chroot catalog."""

import copy
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse

from apps.accounts.models import Group, User
from apps.core.errors import (
    Conflict,
    FieldErrors,
    InvalidForm,
    NotFound,
    PermissionDenied,
    ServiceError,
)
from apps.projects.models import Chroot, PermissionLevel, Project, ProjectChroot, ProjectPermission
from apps.projects.permissions import can_admin, can_edit, can_own_as, is_owner

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
    *,
    user: User,
    ownername: str,
    name: str,
    chroot_names: list[str],
    errors: FieldErrors | None = None,
    **fields,
) -> Project:
    """Create a project owned by `ownername` (the user or one of their @groups).

    Only the projects app's rows: apps.workflows.projects.project_create, which callers use,
    asks for the project's signing key in the same transaction.

    Every invalid field is reported at once, with those the caller already found while
    reading the request (`errors`), in Copr's per-field shape; nothing is written then.
    """
    if not can_own_as(user, ownername):
        raise PermissionDenied(f"You cannot create projects owned by {ownername}.")
    owner = owner_lookup(ownername)
    check_fields(user, fields, allowed=EDITABLE_FIELDS | STAFF_ONLY_FIELDS)
    errors = errors if errors is not None else FieldErrors()
    chroots = errors.check("chroots", chroots_lookup, chroot_names)
    if isinstance(name, str) and Project.objects.filter(name=name, **owner).exists():
        errors.add("name", f"You already have a project named '{name}'.")
    project = Project(name=name, created_by=user, **owner, **fields)
    errors.check("name", validate, project)
    errors.raise_if_any()
    try:
        with transaction.atomic():
            project.save()
            ProjectChroot.objects.bulk_create(
                [ProjectChroot(project=project, chroot=chroot) for chroot in chroots]
            )
    except IntegrityError as error:
        raise Conflict(f"Project {ownername}/{name} already exists.") from error
    return project


def project_edit(
    *,
    user: User,
    project: Project,
    chroot_names: list[str] | None = None,
    errors: FieldErrors | None = None,
    **fields,
) -> Project:
    """Change project settings; `chroot_names`, when given, becomes the enabled set.

    As project_create, every invalid field (and the caller's `errors`) is reported at once.
    Only the projects app's rows: apps.workflows.projects.project_edit, which callers use,
    asks for the repositories a devel mode change affects.
    """
    if not can_edit(user, project):
        raise PermissionDenied(f"You are not allowed to edit {project.full_name}.")
    check_fields(user, fields, allowed=EDITABLE_FIELDS | STAFF_ONLY_FIELDS)
    errors = errors if errors is not None else FieldErrors()
    chroots = None
    if chroot_names is not None:
        chroots = errors.check("chroots", chroots_lookup, chroot_names)
    # Checked on a copy: the caller's object must not keep rejected values.
    changed = copy.copy(project)
    for field, value in fields.items():
        setattr(changed, field, value)
    errors.check("name", validate, changed)
    errors.raise_if_any()
    for field, value in fields.items():
        setattr(project, field, value)
    with transaction.atomic():
        project.save()
        if chroots is not None:
            project_set_chroots(project=project, chroots=chroots)
    return project


def project_set_chroots(*, project: Project, chroots: list[Chroot]) -> None:
    wanted = {chroot.pk for chroot in chroots}
    # End-of-life chroots cannot be chosen, so a list without them does not untick them:
    # as in Copr, the project keeps them (and their results) until they expire.
    ProjectChroot.objects.filter(project=project).exclude(chroot_id__in=wanted).exclude(
        chroot__end_of_life=True
    ).delete()
    existing = set(project.project_chroots.values_list("chroot_id", flat=True))
    ProjectChroot.objects.bulk_create(
        [ProjectChroot(project=project, chroot_id=pk) for pk in wanted - existing]
    )


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
        raise InvalidForm({"chroots": ["At least one chroot must be selected"]})
    found = {c.name: c for c in Chroot.objects.filter(name__in=names, is_active=True)}
    missing = [name for name in names if name not in found]
    if missing:
        raise InvalidForm(
            {"chroots": [f"'{name}' is not a valid choice for this field" for name in missing]}
        )
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
        raise invalid_form(error) from error


def invalid_form(error: ValidationError) -> InvalidForm:
    """A model's ValidationError as Copr's per-field error (each message once)."""
    errors = FieldErrors()
    for field, messages in error.message_dict.items():
        errors.add(field, *messages)
    return InvalidForm(errors.errors)


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


# --- fork, regenerate, permission requests, webhook secret, chroot edit (Copr's APIv3) ----

# Settings a fork does not inherit (Copr's ProjectForking): they belong to the original.
NOT_FORKED_FIELDS = frozenset({"contact", "auto_prune", "persistent"})
CHROOT_SETTINGS = (
    "additional_repos", "additional_packages", "additional_modules", "with_opts",
    "without_opts", "isolation", "bootstrap", "bootstrap_image", "comps_name", "comps",
)  # fmt: skip
CHROOT_RESETTABLE = frozenset(CHROOT_SETTINGS) - {"comps"}


def active_project_chroots(project: Project):
    return project.project_chroots.select_related("chroot").filter(chroot__is_active=True)


def fork_chroot_settings(source: Project, target: Project) -> None:
    for source_chroot in active_project_chroots(source):
        ProjectChroot.objects.filter(project=target, chroot=source_chroot.chroot).update(
            **{field: getattr(source_chroot, field) for field in CHROOT_SETTINGS}
        )


def permission_request(
    *, user: User, project: Project, builder: bool | None = None, admin: bool | None = None
) -> bool:
    """Ask for (True) or give up (False) builder/admin rights; returns whether anything changed."""
    if not user.is_authenticated:
        raise PermissionDenied("Log in to request permissions.")
    if is_owner(user, project):
        raise ServiceError(f"You own {project.full_name}; owners have all rights already.")
    current = ProjectPermission.objects.filter(project=project, user=user).first()
    wanted = {}
    for role, asked in (("builder", builder), ("admin", admin)):
        if asked is None:
            continue
        level = getattr(current, role) if current else PermissionLevel.NOTHING
        if asked and level == PermissionLevel.APPROVED:
            raise ServiceError(f"You already are {role} in {project.full_name}.")
        wanted[role] = PermissionLevel.REQUEST if asked else PermissionLevel.NOTHING
    if not wanted:
        raise ServiceError("Say which permission you request: builder, admin or both.")
    if current and all(getattr(current, role) == level for role, level in wanted.items()):
        return False
    ProjectPermission.objects.update_or_create(project=project, user=user, defaults=wanted)
    asked_for = [role for role, level in wanted.items() if level == PermissionLevel.REQUEST]
    if asked_for:
        transaction.on_commit(lambda: permission_request_mail(project, user, asked_for))
    return True


def permission_request_mail(project: Project, user: User, roles: list[str]) -> None:
    """Tell the project's owner(s) and admins that `user` asks for `roles` (Copr mails them).

    Sent after commit: a rolled-back request mails nobody. A mail server that is down
    must not turn a recorded request into an error page, hence fail_silently.
    """
    recipients = permission_deciders_emails(project)
    if not recipients:
        return
    url = settings.PUBLIC_URL + reverse(
        "project-permissions", args=[project.ownername, project.name]
    )
    send_mail(
        subject=f"[coprsite] {user.username} asks for {' and '.join(roles)} rights in "
        f"{project.full_name}",
        message=f"{user.username} asks to become {' and '.join(roles)} of {project.full_name}.\n\n"
        f"Approve or decline it at {url}\n",
        from_email=None,
        recipient_list=recipients,
        fail_silently=True,
    )


def permission_deciders_emails(project: Project) -> list[str]:
    """Addresses of those who decide on permission requests: owner(s) and approved admins."""
    if project.owner_group_id:
        owners = project.owner_group.members.filter(is_active=True)
    else:
        owners = User.objects.filter(pk=project.owner_user_id, is_active=True)
    admins = User.objects.filter(
        is_active=True,
        project_permissions__project=project,
        project_permissions__admin=PermissionLevel.APPROVED,
    )
    emails = {*owners.values_list("email", flat=True), *admins.values_list("email", flat=True)}
    return sorted(email for email in emails if email)


def project_webhook_secret_regenerate(*, user: User, project: Project) -> str:
    """A new webhook secret; webhooks configured with the old one stop working."""
    if not can_edit(user, project):
        raise PermissionDenied(f"You are not allowed to change webhooks of {project.full_name}.")
    secret = str(uuid.uuid4())
    Project.objects.filter(pk=project.pk).update(webhook_secret=secret)
    project.webhook_secret = secret
    return secret


def project_chroot_edit(
    *,
    user: User,
    project_chroot: ProjectChroot,
    reset_fields: list[str] | None = None,
    comps: tuple[str, str] | None = None,
    delete_comps: bool = False,
    errors: FieldErrors | None = None,
    **fields,
) -> ProjectChroot:
    """Change a project chroot's build settings; `comps` is (file name, comps.xml text)."""
    if not can_edit(user, project_chroot.project):
        raise PermissionDenied(
            f"You are not allowed to edit chroots of {project_chroot.project.full_name}."
        )
    unknown = set(fields) - CHROOT_RESETTABLE
    if unknown:
        raise ServiceError(f"Unknown chroot setting(s): {', '.join(sorted(unknown))}.")
    errors = errors if errors is not None else FieldErrors()
    changed = copy.copy(project_chroot)
    for field, value in fields.items():
        setattr(changed, field, value)
    try:
        changed.full_clean(exclude=["project", "chroot"])
    except ValidationError as error:
        errors.merge(invalid_form(error), "__all__")
    errors.raise_if_any()
    check_reset_fields(project_chroot, reset_fields or [])
    for field, value in fields.items():
        setattr(project_chroot, field, value)
    for field in reset_fields or []:
        setattr(project_chroot, field, ProjectChroot._meta.get_field(field).get_default())
    if comps is not None:
        project_chroot.comps_name, project_chroot.comps = comps
    elif delete_comps:
        project_chroot.comps_name, project_chroot.comps = "", ""
    project_chroot.save()
    return project_chroot


def check_reset_fields(project_chroot: ProjectChroot, names: list[str]) -> None:
    """Copr's answer to a reset of an unknown setting, with its hint where to look (after
    the form's own errors, as Copr checks them first)."""
    for name in names:
        if name not in CHROOT_RESETTABLE:
            full_name = f"{project_chroot.project.full_name}/{project_chroot.chroot.name}"
            raise ServiceError(
                f"Trying to reset an invalid attribute: {name}\n"
                f"See `copr-cli get-chroot {full_name}' for all the possible attributes"
            )
