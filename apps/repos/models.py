"""Signing keys (public part only; private keys stay under KEYS_ROOT) and repository state."""

from django.db import models
from django.utils import timezone


class KeyState(models.TextChoices):
    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


class SigningKey(models.Model):
    project = models.OneToOneField(
        "projects.Project", on_delete=models.CASCADE, related_name="signing_key"
    )
    state = models.CharField(max_length=10, choices=KeyState.choices, default=KeyState.PENDING)
    fingerprint = models.CharField(max_length=64, blank=True)
    uid = models.CharField(max_length=300, blank=True)
    public_key = models.TextField(blank=True)
    created_on = models.DateTimeField(default=timezone.now)
    error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.project_id}: {self.fingerprint or self.state}"


class Repository(models.Model):
    """One chroot directory of a project, published with createrepo_c.

    Regeneration is coalesced: writers bump `requested_serial`; a run publishes everything
    on disk up to the serial it saw at start, so N requests while a run is going cause one
    more run, not N.
    """

    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="repositories"
    )
    project_dirname = models.CharField(max_length=200)
    chroot = models.ForeignKey("projects.Chroot", on_delete=models.PROTECT, related_name="+")
    requested_serial = models.PositiveIntegerField(default=0)
    # In devel mode builds reach only devel/repodata; requests that must reach the main
    # repodata (regenerate-repos, deletes, forks) record their serial here.
    main_requested_serial = models.PositiveIntegerField(default=0)
    published_serial = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)
    runs = models.PositiveIntegerField(default=0)
    last_run_on = models.DateTimeField(null=True, blank=True)
    last_run_seconds = models.FloatField(null=True, blank=True)
    package_count = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "repositories"
        constraints = [
            models.UniqueConstraint(
                fields=["project", "project_dirname", "chroot"], name="repository_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.project_id}:{self.project_dirname}/{self.chroot_id}"

    @property
    def is_current(self) -> bool:
        return self.published_serial >= self.requested_serial
