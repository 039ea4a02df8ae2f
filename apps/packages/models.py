"""Package (a default source for builds), DistGit instances, and received webhooks."""

from django.apps import apps as django_apps
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from apps.core.names import PACKAGE_LENGTH_MESSAGE, validate_package_name

PACKAGE_NAME_VALIDATOR = validate_package_name


class SourceType(models.TextChoices):
    """Copr's source types, by the names its API uses."""

    UNSET = "unset"
    LINK = "link"
    UPLOAD = "upload"
    PYPI = "pypi"
    RUBYGEMS = "rubygems"
    SCM = "scm"
    CUSTOM = "custom"
    DISTGIT = "distgit"


def source_type_choices() -> list[tuple[str, str]]:
    """SourceType and any other source method of the registry: a new one needs no migration."""
    methods = django_apps.get_app_config("packages").source_methods
    others = [(name, methods[name].form.title) for name in methods if name not in SourceType]
    return [*SourceType.choices, *others]


class Package(models.Model):
    name = models.CharField(
        max_length=100,
        validators=[PACKAGE_NAME_VALIDATOR],
        error_messages={"max_length": PACKAGE_LENGTH_MESSAGE},
    )
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="packages"
    )
    source_type = models.CharField(
        max_length=20, choices=source_type_choices, default=SourceType.UNSET
    )
    source_json = models.JSONField(default=dict, blank=True)
    webhook_rebuild = models.BooleanField(default=False)
    max_builds = models.PositiveIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(100)]
    )
    timeout = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(108000)]
    )
    chroot_denylist = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="package_unique_per_project")
        ]

    def __str__(self) -> str:
        return self.name


class DistGitInstance(models.Model):
    """An operator-configured dist-git (Fedora, CentOS Stream, …)."""

    name = models.CharField(max_length=50, unique=True)
    clone_url = models.CharField(max_length=200, help_text="e.g. https://src.fedoraproject.org")
    clone_package_uri = models.CharField(max_length=200, default="rpms/{pkgname}.git")
    lookaside_url = models.CharField(
        max_length=300,
        blank=True,
        help_text="Pattern with {name} {filename} {hashtype} {hash}",
    )
    default_namespace = models.CharField(max_length=100, blank=True)
    priority = models.IntegerField(default=100)

    class Meta:
        ordering = ["priority", "name"]

    def __str__(self) -> str:
        return self.name


class WebhookHistory(models.Model):
    """A received webhook, kept with what it triggered."""

    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="webhooks"
    )
    created_on = models.DateTimeField(default=timezone.now, db_index=True)
    provider = models.CharField(max_length=20)
    event = models.CharField(max_length=50, blank=True)
    webhook_uuid = models.CharField(max_length=100, blank=True)
    user_agent = models.CharField(max_length=200, blank=True)
    outcome = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_on"]
        verbose_name_plural = "webhook history"

    def __str__(self) -> str:
        return f"{self.provider} {self.event} {self.created_on:%Y-%m-%d %H:%M}"
