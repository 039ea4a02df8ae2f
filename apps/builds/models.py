"""Build, BuildTask (the source task plus one per chroot) and Batch, with Copr's states."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class State(models.TextChoices):
    """Copr's state names (StatusEnum), so clients understand them."""

    FAILED = "failed"
    SUCCEEDED = "succeeded"
    CANCELED = "canceled"
    RUNNING = "running"
    PENDING = "pending"
    SKIPPED = "skipped"
    STARTING = "starting"
    IMPORTING = "importing"
    FORKED = "forked"
    WAITING = "waiting"
    UNKNOWN = "unknown"


FINAL_STATES = frozenset(
    {State.SUCCEEDED, State.FORKED, State.CANCELED, State.SKIPPED, State.FAILED}
)
ACTIVE_STATES = frozenset({State.STARTING, State.RUNNING, State.IMPORTING})
# What running and publishing a task reads: its chroot, and its project with the owner
# whose name is in every results path.
TASK_RELATED = ("build__project__owner_user", "build__project__owner_group", "chroot")


class Priority(models.IntegerChoices):
    """Lower runs sooner: source tasks, then normal builds, then background builds."""

    SOURCE = 0
    NORMAL = 1
    BACKGROUND = 2


def accepting_web_host() -> str:
    """The internal URL of the web host that takes a new build (WEB_INTERNAL_URL)."""
    return settings.WEB_INTERNAL_URL


class Batch(models.Model):
    """Builds that run together; a batch blocked by another waits for it to finish."""

    blocked_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="blocks"
    )
    created_on = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "batches"

    def __str__(self) -> str:
        return f"batch {self.pk}"


class Build(models.Model):
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="builds")
    project_dirname = models.CharField(max_length=200)
    package = models.ForeignKey(
        "packages.Package",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="builds",
    )
    submitter = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="builds",
    )
    submitted_by = models.CharField(
        max_length=200, blank=True, help_text="Who triggered a build without a user (webhook)."
    )
    source_type = models.CharField(max_length=20)
    source_json = models.JSONField(default=dict, blank=True)
    # The web host that keeps the build's upload or webhook payload, as the backend reaches
    # it; empty: the backend reads UPLOADS_ROOT itself (one host) or uses its own setting.
    web_host = models.CharField(max_length=200, blank=True, default=accepting_web_host)
    srpm_url = models.CharField(max_length=500, blank=True)
    # The commit an SCM or DistGit source task checked out (its committish resolved).
    source_commit = models.CharField(max_length=64, blank=True)
    package_name = models.CharField(max_length=100, blank=True, db_index=True)
    package_version = models.CharField(max_length=100, blank=True)
    built_packages = models.JSONField(default=list, blank=True)
    enable_net = models.BooleanField(default=False)
    repos = models.JSONField(default=list, blank=True)
    timeout = models.PositiveIntegerField(default=18000)
    is_background = models.BooleanField(default=False)
    isolation = models.CharField(max_length=20, default="unchanged")
    bootstrap = models.CharField(max_length=20, default="unchanged")
    requested_chroots = models.JSONField(
        default=list, blank=True, help_text="Chroot names chosen at submit time."
    )
    batch = models.ForeignKey(
        Batch, null=True, blank=True, on_delete=models.SET_NULL, related_name="builds"
    )
    canceled = models.BooleanField(default=False)
    # Derived from the tasks (Copr's rules) and stored so lists filter and sort by index.
    state = models.CharField(
        max_length=20, choices=State.choices, default=State.PENDING, db_index=True
    )
    submitted_on = models.DateTimeField(default=timezone.now, db_index=True)
    started_on = models.DateTimeField(null=True, blank=True)
    ended_on = models.DateTimeField(null=True, blank=True)
    # SSH access for debugging (Copr's ssh_public_keys): one public key per line, checked
    # and normalized; empty for a normal build. Its RPM task runs on a machine of its own,
    # kept for the submitter `ssh_hours` after the build (apps/builds/ssh_access.py).
    ssh_public_keys = models.TextField(blank=True)
    ssh_hours = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["project", "-id"], name="build_project_recent"),
            models.Index(fields=["project", "state"], name="build_project_state"),
            models.Index(fields=["package", "-id"], name="build_package_recent"),
            # The web builds list filters by state or package and shows the newest first.
            models.Index(fields=["project", "state", "-id"], name="build_project_state_recent"),
            models.Index(fields=["project", "package_name", "-id"], name="build_project_package"),
            models.Index(fields=["submitter", "-id"], name="build_submitter_recent"),
            # /status/pending/ counts the background tasks pending: few builds among many.
            models.Index(fields=["id"], name="build_background", condition=Q(is_background=True)),
            # The scheduler reads the builds with SSH access, few among many.
            models.Index(fields=["id"], name="build_ssh_access", condition=~Q(ssh_public_keys="")),
        ]

    def __str__(self) -> str:
        return f"build {self.pk}"

    @property
    def is_finished(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def with_ssh_access(self) -> bool:
        return bool(self.ssh_public_keys)


# A fork's task ends (ended_on) once its results are copied and signed with the fork's key.
FORKED_UNCOPIED = Q(state=State.FORKED, ended_on__isnull=True)


class BuildTaskQuerySet(models.QuerySet):
    """A running task's phase, named once: the nullable columns that spell it stay here.

    An active task goes through acquiring and using a builder, then (RPM tasks) waiting to
    be signed with `builder` cleared and its `result_files` set, then publishing with a
    `publish_serial`: the repository run that lists its RPMs ends it.
    """

    def before_publishing(self):
        """Active and not yet handed to a repository run: on a builder or awaiting signing."""
        return self.filter(state__in=list(ACTIVE_STATES), publish_serial__isnull=True)

    def on_builder(self):
        """Holding a builder's slot: acquiring it or building there."""
        return self.before_publishing().filter(builder__isnull=False)

    def awaiting_signing(self):
        """Built and off its builder, not yet signed and queued for publishing."""
        return (
            self.before_publishing()
            .filter(state=State.RUNNING, builder__isnull=True)
            .exclude(result_files=[])
        )

    def still_building(self):
        """Queued or on a builder: the RPMs (and their signing) are yet to come."""
        return self.filter(state__in=[State.PENDING, *ACTIVE_STATES], result_files=[])

    def forked_uncopied(self):
        """Copied by a fork, its results not yet copied and signed with the fork's key."""
        return self.filter(FORKED_UNCOPIED)

    def without_forked_uncopied(self):
        """Everything but forked tasks still being copied: those have no files to give yet."""
        return self.exclude(FORKED_UNCOPIED)

    def publishing(self):
        """Signed, its RPMs waiting for the repository run that publishes them."""
        return self.filter(state=State.RUNNING, publish_serial__isnull=False)


# Copr's name for the source tasks' directory of a project (and their "chroot" in messages).
SOURCE_DIR = "srpm-builds"


class BuildTask(models.Model):
    """One unit of builder work: the source task (chroot is null) or one chroot's RPM build."""

    build = models.ForeignKey(Build, on_delete=models.CASCADE, related_name="tasks")
    chroot = models.ForeignKey(
        "projects.Chroot",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="tasks",
    )
    state = models.CharField(max_length=20, choices=State.choices, default=State.WAITING)
    state_reason = models.TextField(
        blank=True, help_text="Why it failed, was skipped, or still waits."
    )
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.NORMAL)
    owner_key = models.CharField(
        max_length=110, blank=True, help_text="Owner name, for fair share between owners."
    )
    builder = models.ForeignKey(
        "fleet.Builder",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tasks",
    )
    attempt = models.PositiveSmallIntegerField(default=0)
    heartbeat_on = models.DateTimeField(null=True, blank=True)
    # The attempt's job on its builder, which runs detached from the worker: another worker
    # reattaches to it by this id (on the same builder) when the first one dies.
    remote_job = models.CharField(max_length=200, blank=True)
    # The worker that follows the task's job now; a worker whose lease was handed on to
    # another (reconcile took it for dead) stops following and writes nothing.
    lease_token = models.CharField(max_length=32, blank=True)
    # A forked task's original, whose results the sign queue copies (reconcile asks again
    # for a copy whose message or worker was lost); empty once the original is deleted.
    forked_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    queued_on = models.DateTimeField(default=timezone.now)
    started_on = models.DateTimeField(null=True, blank=True)
    ended_on = models.DateTimeField(null=True, blank=True)
    result_dir = models.CharField(max_length=300, blank=True)
    built_packages = models.JSONField(default=list, blank=True)
    result_files = models.JSONField(default=list, blank=True)
    # What the builder built in (builders.runner.buildroot_line), for the build page.
    buildroot = models.CharField(max_length=300, blank=True)
    # Set when the task's signed RPMs wait for the repository run that publishes them.
    publish_serial = models.PositiveIntegerField(null=True, blank=True)

    objects = BuildTaskQuerySet.as_manager()

    class Meta:
        ordering = ["build_id", "chroot__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["build", "chroot"], name="task_unique_chroot_per_build"
            ),
            models.UniqueConstraint(
                fields=["build"], condition=Q(chroot__isnull=True), name="task_one_source_task"
            ),
        ]
        indexes = [
            models.Index(fields=["state", "priority", "id"], name="task_queue"),
            models.Index(fields=["state", "heartbeat_on"], name="task_liveness"),
            # /status/stats/ counts the chroot tasks of the last 30 days out of years of them.
            # Partial, so that no status page walks it through every finished task to list
            # the queue in order: the queue is the newest few thousand of them.
            models.Index(
                fields=["queued_on"], name="task_queued_on", condition=Q(chroot__isnull=False)
            ),
            # The status pages list a state's tasks longest in the queue first, a page at a
            # time (without it, PostgreSQL walks task_queued_on through every finished task).
            models.Index(fields=["state", "queued_on", "id"], name="task_state_queued"),
        ]

    def __str__(self) -> str:
        return self.task_id

    @property
    def is_source(self) -> bool:
        return self.chroot_id is None

    @property
    def awaits_signing(self) -> bool:
        """Built and off its builder, but not yet signed and queued for publishing."""
        return (
            self.state == State.RUNNING
            and self.builder_id is None
            and bool(self.result_files)
            and self.publish_serial is None
        )

    @property
    def task_id(self) -> str:
        """Copr's task id: `<build_id>` for the source task, `<build_id>-<chroot>` otherwise."""
        if self.is_source:
            return str(self.build_id)
        return f"{self.build_id}-{self.chroot.name}"


class TaskAttempt(models.Model):
    """One run of a task on a builder: which builder, how long, how it ended.

    BuildTask.builder is cleared once the builder's part is over; this record stays, one
    per run (apps/builds/lifecycle.task_attempt_start and task_attempt_end).
    """

    task = models.ForeignKey(BuildTask, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveSmallIntegerField(help_text="The task's attempt, 1 for the first.")
    builder = models.ForeignKey(
        "fleet.Builder", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The builder's name outlives the builder (a removed host, a deleted pool).
    builder_name = models.CharField(max_length=100)
    started_on = models.DateTimeField(default=timezone.now)
    ended_on = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=500, blank=True)
    # Vm and command pools: the machine that ran it and how long the attempt waited for it
    # (near zero for a machine made ahead or kept from the owner's previous build).
    machine_name = models.CharField(max_length=100, blank=True)
    machine_wait_seconds = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["task_id", "started_on", "pk"]

    def __str__(self) -> str:
        return f"task {self.task_id} attempt {self.number} on {self.builder_name}"
