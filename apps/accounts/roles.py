"""The staff role: what Copr's admins may do in the console, without root on the builders.

`is_staff` users are Copr's admins: they manage chroots, users, @groups, projects,
packages and builds, and may drain or resume builders. What runs commands on builder
machines (a pool's kind, config with its `new`/`delete` commands, limits, VM image; a
chroot's mock config) stays with superusers. The role is a Django permission group kept
in step with this table after every `migrate`; create_user --staff puts a user in it.
"""

from django.apps import apps as django_apps
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Q

STAFF_GROUP_NAME = "Copr admins"
ALL = ("view", "add", "change", "delete")
STAFF_PERMISSIONS = {
    # Users are created by their first login; staff edit and disable them (never superusers,
    # and never the flags or permissions that make someone staff: see accounts/admin.py).
    "accounts.user": ("view", "change"),
    "accounts.group": ALL,
    "accounts.apitoken": ("view", "delete"),
    "accounts.oidcidentity": ALL,
    "accounts.uploadslot": ("view", "delete"),  # free a slot a user's stuck upload holds
    "projects.chroot": ("view", "add", "change"),
    "projects.project": ALL,
    "projects.projectchroot": ALL,
    "projects.projectpermission": ALL,
    "packages.package": ALL,
    "packages.distgitinstance": ALL,
    "packages.webhookhistory": ("view",),
    "builds.build": ("view",),  # cancel, requeue and delete are actions through the services
    "builds.buildtask": ("view",),
    "builds.taskattempt": ("view",),
    "builds.batch": ("view",),
    "repos.signingkey": ("view",),
    "repos.repository": ("view",),
    # Builders: drain and resume (their state), nothing that decides what runs on them.
    "fleet.builderpool": ("view",),
    "fleet.builder": ("view", "change"),
    "fleet.builderstatechange": ("view",),
    "fleet.machine": ("view",),
    "fleet.poolchange": ("view",),
    # Login lockouts: see who is locked out, and lift a lockout by deleting its attempt.
    "axes.accessattempt": ("view", "delete"),
    "axes.accessfailurelog": ("view",),
}


def staff_permissions() -> list[Permission]:
    wanted = Q(pk__in=[])
    for model_label, actions in STAFF_PERMISSIONS.items():
        app_label, model = model_label.split(".")
        codenames = [f"{action}_{model}" for action in actions]
        wanted |= Q(content_type__app_label=app_label, codename__in=codenames)
    return list(Permission.objects.filter(wanted))


def staff_group_ensure() -> Group:
    """The staff role's group, with exactly the permissions of STAFF_PERMISSIONS."""
    with transaction.atomic():
        group, _ = Group.objects.get_or_create(name=STAFF_GROUP_NAME)
        group.permissions.set(staff_permissions())
    return group


def staff_group_sync(sender, using: str = "default", **kwargs) -> None:
    """post_migrate: the role follows the table (models added later get their permissions)."""
    # post_migrate comes once per app with models, each after that app's permissions are
    # made: the last one sees them all.
    with_models = [config for config in django_apps.get_app_configs() if config.models_module]
    if using == "default" and sender is with_models[-1]:
        staff_group_ensure()
