"""Project, ProjectChroot, ProjectPermission and the Chroot catalog (Copr's mock chroots)."""

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.core.names import validate_chroot_name, validate_project_name
from apps.core.urlcheck import validate_repo_urls
from apps.projects.choices import PermissionLevel
from apps.projects.querysets import ProjectQuerySet

PROJECT_NAME_VALIDATOR = validate_project_name


class Chroot(models.Model):
    """A build target such as `fedora-43-x86_64`: a distribution release on one arch."""

    name = models.CharField(max_length=100, unique=True, validators=[validate_chroot_name])
    os_release = models.CharField(max_length=50)
    os_version = models.CharField(max_length=50)
    arch = models.CharField(max_length=20, db_index=True)
    is_active = models.BooleanField(default=True, db_index=True)
    end_of_life = models.BooleanField(default=False)
    macros = models.JSONField(default=dict, blank=True, help_text='e.g. {"dist": ".fc43"}')
    mock_config = models.CharField(max_length=100, blank=True)
    distgit_branch = models.CharField(max_length=50, blank=True)
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["os_release", "os_version", "arch"]
        constraints = [
            models.UniqueConstraint(
                fields=["os_release", "os_version", "arch"], name="chroot_unique_triple"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def name_release(self) -> str:
        return f"{self.os_release}-{self.os_version}"


class BootstrapChoice(models.TextChoices):
    DEFAULT = "default"
    ON = "on"
    OFF = "off"
    IMAGE = "image"


class IsolationChoice(models.TextChoices):
    DEFAULT = "default"
    NSPAWN = "nspawn"
    SIMPLE = "simple"


class Project(models.Model):
    """A Copr project: owned by a user or an @group, with its chroots and settings."""

    name = models.CharField(max_length=100, validators=[PROJECT_NAME_VALIDATOR])
    owner_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="projects",
    )
    owner_group = models.ForeignKey(
        "accounts.Group",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="projects",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_on = models.DateTimeField(default=timezone.now)
    homepage = models.URLField(blank=True)
    contact = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    instructions = models.TextField(blank=True)
    additional_repos = models.JSONField(default=list, blank=True, validators=[validate_repo_urls])
    devel_mode = models.BooleanField(
        default=False, help_text="Do not publish new builds until repos are regenerated."
    )
    enable_net = models.BooleanField(default=False)
    unlisted_on_hp = models.BooleanField(default=False)
    persistent = models.BooleanField(default=False)
    auto_prune = models.BooleanField(default=True)
    bootstrap = models.CharField(
        max_length=20, choices=BootstrapChoice.choices, default=BootstrapChoice.DEFAULT
    )
    bootstrap_image = models.CharField(max_length=200, blank=True)
    isolation = models.CharField(
        max_length=20, choices=IsolationChoice.choices, default=IsolationChoice.DEFAULT
    )
    follow_fedora_branching = models.BooleanField(default=True)
    delete_after = models.DateTimeField(null=True, blank=True)
    multilib = models.BooleanField(default=False)
    module_hotfixes = models.BooleanField(default=False)
    runtime_dependencies = models.JSONField(
        default=list, blank=True, validators=[validate_repo_urls]
    )
    fedora_review = models.BooleanField(default=False)
    appstream = models.BooleanField(default=False)
    packit_forge_projects_allowed = models.JSONField(default=list, blank=True)
    repo_priority = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)]
    )
    # Set by an operator (the admin): tags a builder pool must have to build this
    # project's RPMs, e.g. ["cloud_a"] (apps/builds/scheduler.runnable_tasks).
    builder_tags = models.JSONField(
        default=list,
        blank=True,
        help_text='Operators: tags a pool must have to build this project, e.g. ["cloud_a"].',
    )
    forked_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="forks"
    )
    webhook_secret = models.CharField(max_length=64, default=uuid.uuid4, editable=False)
    chroots = models.ManyToManyField(Chroot, through="ProjectChroot", related_name="projects")

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [
            # The scheduler reads the tagged projects for each slot it fills; few are.
            models.Index(
                fields=["id"], condition=~Q(builder_tags=[]), name="project_builder_tagged"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(owner_user__isnull=False, owner_group__isnull=True)
                | Q(owner_user__isnull=True, owner_group__isnull=False),
                name="project_has_exactly_one_owner",
            ),
            models.UniqueConstraint(
                fields=["owner_user", "name"],
                condition=Q(owner_user__isnull=False),
                name="project_unique_name_per_user",
            ),
            models.UniqueConstraint(
                fields=["owner_group", "name"],
                condition=Q(owner_group__isnull=False),
                name="project_unique_name_per_group",
            ),
        ]

    def __str__(self) -> str:
        return self.full_name

    @property
    def ownername(self) -> str:
        """`alice` or `@packagers`, as Copr spells owners."""
        return self.owner_group.at_name if self.owner_group_id else self.owner_user.username

    @property
    def full_name(self) -> str:
        return f"{self.ownername}/{self.name}"


def owner_name(username: str | None, groupname: str | None) -> str:
    """`Project.ownername` from the owner columns of a row read as values."""
    return f"@{groupname}" if groupname else username


class ProjectChroot(models.Model):
    """A chroot enabled in a project, with its per-chroot build settings."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="project_chroots")
    chroot = models.ForeignKey(Chroot, on_delete=models.PROTECT, related_name="project_chroots")
    additional_repos = models.JSONField(default=list, blank=True, validators=[validate_repo_urls])
    additional_packages = models.JSONField(default=list, blank=True)
    additional_modules = models.JSONField(default=list, blank=True)
    with_opts = models.JSONField(default=list, blank=True)
    without_opts = models.JSONField(default=list, blank=True)
    isolation = models.CharField(max_length=20, default="unchanged")
    bootstrap = models.CharField(max_length=20, default="unchanged")
    bootstrap_image = models.CharField(max_length=200, blank=True)
    comps_name = models.CharField(max_length=200, blank=True)
    comps = models.TextField(blank=True)
    delete_after_days = models.IntegerField(
        null=True, blank=True, validators=[MinValueValidator(-1), MaxValueValidator(720)]
    )

    class Meta:
        ordering = ["chroot__name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "chroot"], name="project_chroot_unique")
        ]

    def __str__(self) -> str:
        return f"{self.project_id}/{self.chroot_id}"


class ProjectPermission(models.Model):
    """Builder and admin rights of one user in one project (Copr's CoprPermission)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="permissions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="project_permissions"
    )
    builder = models.CharField(
        max_length=10, choices=PermissionLevel.choices, default=PermissionLevel.NOTHING
    )
    admin = models.CharField(
        max_length=10, choices=PermissionLevel.choices, default=PermissionLevel.NOTHING
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="permission_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user_id}@{self.project_id}: builder={self.builder} admin={self.admin}"
