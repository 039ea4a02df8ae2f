"""Builder pools (where builds run) and builders (machines or local slots)."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from builders.arches import GUEST_ARCHES, host_arch


class PoolKind(models.TextChoices):
    LOCAL = "local", "local sandboxes on the worker host"
    SSH = "ssh", "static hosts over SSH"
    VM = "vm", "disposable virtual machines"
    COMMAND = "command", "operator new/delete commands"


# Kinds whose builders run tasks (apps/fleet/transports.py): all of them.
RUNNABLE_POOL_KINDS = tuple(PoolKind)
# Kinds that make a machine per task; their pool has one builder whose slots are the
# pool's max_builders (apps/fleet/services.machine_pool_sync).
MACHINE_POOL_KINDS = (PoolKind.VM, PoolKind.COMMAND)


class BuilderPool(models.Model):
    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=PoolKind.choices, default=PoolKind.LOCAL)
    arches = models.JSONField(default=list, help_text='Arches served, e.g. ["x86_64"].')
    # A vm pool's machines are of this arch; one other than the host's is emulated (TCG).
    arch = models.CharField(
        max_length=20,
        choices=[(name, name) for name in GUEST_ARCHES],
        default=host_arch,
        help_text="Vm pools: the arch of the VMs (and of the image in config). Another arch "
        "than this host's runs under emulation. Arches served default to it.",
    )
    enabled = models.BooleanField(default=True)
    max_builders = models.PositiveIntegerField(default=1)
    config = models.JSONField(
        default=dict, blank=True, help_text="Kind-specific: hosts, image, new/delete commands."
    )
    # Resource limits of the jobs this pool runs; empty means the BUILD_LIMIT_* setting.
    limit_processes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Processes per job (0: none). Empty: the default."
    )
    limit_memory_mib = models.PositiveIntegerField(
        null=True, blank=True, help_text="Memory per job in MiB (0: none). Empty: the default."
    )
    limit_cpu_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="CPU seconds per job (0: none). Empty: the default."
    )
    limit_disk_mib = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Disk (workspace and /tmp) per job in MiB (0: none). Empty: the default.",
    )
    limit_cpu_percent = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="CPU per job in percent of one CPU (150: one and a half; 0: no quota). "
        "Empty: the default.",
    )
    # The machine lifecycle of vm and command pools (apps/fleet/machines.py), as resalloc's.
    min_ready = models.PositiveIntegerField(
        default=0,
        help_text="Vm and command pools: machines made ahead and kept ready for the next "
        "tasks (never more machines than max_builders in all).",
    )
    reuse_builds = models.PositiveIntegerField(
        default=1,
        help_text="Vm and command pools: consecutive builds of one owner and project a "
        "machine runs before it is deleted (1: a machine per build). Never across owners.",
    )
    tags = models.JSONField(
        default=list,
        blank=True,
        help_text='What tasks may ask of the pool, e.g. ["cloud_a"]; "arch_<arch>" for '
        "each of its arches is implied.",
    )

    def __str__(self) -> str:
        return self.name

    @property
    def served_arches(self) -> list[str]:
        """The arches it builds: those declared; a vm pool's VMs' arch when none are."""
        if not self.arches and self.kind == PoolKind.VM:
            return [self.arch]
        return list(self.arches)


class BuilderState(models.TextChoices):
    READY = "ready"
    DRAINING = "draining", "draining (finishes its builds, takes no new ones)"
    DOWN = "down"


class Builder(models.Model):
    pool = models.ForeignKey(BuilderPool, on_delete=models.CASCADE, related_name="builders")
    name = models.CharField(max_length=100, unique=True)
    hostname = models.CharField(max_length=200, blank=True)
    arches = models.JSONField(default=list)
    slots = models.PositiveIntegerField(default=1)
    state = models.CharField(
        max_length=10, choices=BuilderState.choices, default=BuilderState.READY, db_index=True
    )
    last_seen_on = models.DateTimeField(default=timezone.now)
    # Health as the last task or probe saw it; state_reason says why a builder is down.
    runner_version = models.CharField(max_length=64, blank=True)
    state_reason = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return self.name


class BuilderStateChange(models.Model):
    """A builder's state as it changed, and why (apps/fleet/services.builder_state_set):
    the operator sees when a builder went down, what it said, and when it came back."""

    builder = models.ForeignKey(Builder, on_delete=models.CASCADE, related_name="state_changes")
    previous_state = models.CharField(max_length=10, choices=BuilderState.choices)
    state = models.CharField(max_length=10, choices=BuilderState.choices)
    reason = models.CharField(max_length=500, blank=True)
    changed_on = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-changed_on", "-pk"]

    def __str__(self) -> str:
        return f"{self.builder_id}: {self.previous_state} -> {self.state}"


class MachineState(models.TextChoices):
    CREATING = "creating"
    READY = "ready", "ready (idle, waiting for a task)"
    RUNNING = "running"
    # SSH access for debugging: after its one build, the machine waits for its user.
    KEPT = "kept", "kept for SSH debugging"
    DELETING = "deleting"
    DELETE_FAILED = "delete_failed", "delete failed (retried by reconcile)"


class Machine(models.Model):
    """A disposable machine of a vm or command pool, from before `new` until `delete` worked.

    The row is written before the machine exists, so that reconcile can still delete it
    when the worker that made it dies (apps/fleet/machines.py).
    """

    pool = models.ForeignKey(BuilderPool, on_delete=models.PROTECT, related_name="machines")
    name = models.CharField(max_length=100, unique=True)
    # The task attempt it serves (plain numbers: the fleet knows nothing of builds); none
    # for a health probe's machine.
    task_id = models.PositiveIntegerField(null=True, blank=True)
    attempt = models.PositiveSmallIntegerField(default=0)
    state = models.CharField(
        max_length=20, choices=MachineState.choices, default=MachineState.CREATING
    )
    address = models.CharField(max_length=200, blank=True)
    # What else `new` printed to log in with (port, user, host_key, key_path): a ready
    # machine is taken by whichever worker runs the next task.
    login = models.JSONField(default=dict, blank=True)
    # Made ahead by reconcile for the pool's min_ready, before any task asked for it.
    made_ahead = models.BooleanField(default=False)
    # "owner/project" of the builds it ran ("" for none yet): it runs no other's builds.
    owner_key = models.CharField(max_length=300, blank=True)
    builds = models.PositiveIntegerField(default=0, help_text="Builds it has run.")
    state_reason = models.CharField(max_length=500, blank=True)
    created_on = models.DateTimeField(default=timezone.now)
    updated_on = models.DateTimeField(default=timezone.now)
    # SSH access for debugging (apps/fleet/machines.machine_keep_for_debugging): whose
    # machine it is after its build, and until when; reconcile deletes it after that.
    kept_for = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="debug_machines",
    )
    kept_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name


class PoolChangeAction(models.TextChoices):
    ADD = "add"
    CHANGE = "change"
    DELETE = "delete"


class PoolChange(models.Model):
    """Who added, changed or deleted a pool, and what it became: pools run commands as root.

    The pool's name is kept as text so the record outlives the pool; `changes` holds the new
    value of each changed field, with the values of the config's `env` masked.
    """

    pool = models.ForeignKey(
        BuilderPool, null=True, blank=True, on_delete=models.SET_NULL, related_name="changes"
    )
    pool_name = models.CharField(max_length=100)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    action = models.CharField(max_length=10, choices=PoolChangeAction.choices)
    changes = models.JSONField(default=dict, blank=True)
    changed_on = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-changed_on", "-pk"]

    def __str__(self) -> str:
        return f"{self.pool_name}: {self.action} by {self.user or 'coprsite'}"
