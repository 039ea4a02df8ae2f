"""Which transport runs a builder's jobs: the kind of its pool decides.

Only the worker calls this; the SSH client never runs in the portal's web process.
"""

from typing import TYPE_CHECKING

from django.conf import settings

from apps.fleet.machines import DebugAccess, MachineRecords, machine_commands, machine_name
from apps.fleet.models import MACHINE_POOL_KINDS, Builder, BuilderPool, PoolKind
from apps.fleet.services import (
    PoolConfigError,
    command_pool_config,
    ssh_host_config,
    vm_pool_arches,
)
from builders.transports import BuilderRefused, Transport
from builders.transports.local import LocalTransport

if TYPE_CHECKING:
    from builders.transports.command import CommandTransport
    from builders.transports.ssh import SshTransport

# The SshHost fields a pool's config may set, for a static host or a disposable machine.
SSH_FIELDS = ("address", "known_host_key", "key_path", "user", "port", "work_dir", "workspaces_dir")
# A disposable machine is used once: its runner and jobs go to the login's home.
MACHINE_WORK_DIR = "~/.coprsite-builder"


def transport_for(
    builder: Builder | None, *, task=None, on_machine=None, debug: DebugAccess | None = None
) -> Transport:
    """The transport of `builder`'s pool; a task without a builder runs locally.

    `task` (a BuildTask) names the machine a vm or command pool gets for it, and its
    project decides which kept machine it may reuse; `on_machine(name, seconds waited)`
    hears which machine that was. With `debug` the task gets a machine of its own that is
    kept for the user after the build (SSH access for debugging; only vm and command pools
    make such machines, the scheduler sends such tasks nowhere else).
    """
    kind = builder.pool.kind if builder is not None else PoolKind.LOCAL
    if kind == PoolKind.LOCAL:
        return LocalTransport()
    if kind == PoolKind.SSH:
        return ssh_transport(builder)
    if kind in MACHINE_POOL_KINDS:
        if task is None:
            return machine_transport(builder.pool, task_id=None)
        return machine_transport(
            builder.pool,
            task_id=task.pk,
            attempt=task.attempt,
            owner_key=machine_owner_key(task),
            on_machine=on_machine,
            debug=debug,
        )
    raise BuilderRefused(f"builder {builder.name}: pools of kind {kind} cannot run builds")


def ssh_transport(builder: Builder) -> "SshTransport":
    from builders.transports.ssh import SshHost, SshTransport

    try:
        host = ssh_host_config(builder)
    except PoolConfigError as error:
        raise BuilderRefused(str(error)) from error
    options = {key: host[key] for key in SSH_FIELDS if key in host}
    blocked = tuple(host.get("blocked_networks", ()))
    # The host is checked against the arches declared for it (builders/transports/ssh.py).
    return SshTransport(
        SshHost(
            name=builder.name,
            blocked_networks=blocked,
            arches=tuple(host["arches"]),
            reconnect_seconds=settings.BUILDER_RECONNECT_SECONDS,
            **options,
        )
    )


def machine_owner_key(task) -> str:
    """Whose builds a machine may run after this task's: its owner's, of its project."""
    return task.build.project.full_name


def machine_transport(
    pool: BuilderPool,
    *,
    task_id: int | None,
    attempt: int = 0,
    owner_key: str = "",
    on_machine=None,
    debug: DebugAccess | None = None,
) -> "CommandTransport":
    """A machine for one task attempt (or a probe of its own): a ready one of the pool or a
    new one, removed afterwards or kept for the owner's next build (apps/fleet/machines.py)."""
    from builders.transports.command import CommandTransport
    from builders.transports.ssh import DEBUG_KEYS_FILE, SshHost

    try:
        commands = machine_commands(pool)
        config = command_pool_config(pool) if pool.kind == PoolKind.COMMAND else {}
        # A VM's arch is known, so the host check probes it (what rpm and uname say in the
        # guest); a command pool's machines may be of any of its arches.
        arches = tuple(vm_pool_arches(pool)) if pool.kind == PoolKind.VM else ()
    except PoolConfigError as error:
        raise BuilderRefused(str(error)) from error
    options = {key: config[key] for key in SSH_FIELDS if key in config}
    defaults = SshHost(
        name=pool.name,
        blocked_networks=tuple(config.get("blocked_networks", ())),
        arches=arches,
        reconnect_seconds=settings.BUILDER_RECONNECT_SECONDS,
        **{"address": "", "known_host_key": "", "key_path": "", "work_dir": MACHINE_WORK_DIR}
        | options,
    )
    return CommandTransport(
        pool=pool.name,
        commands=commands,
        ssh_defaults=defaults,
        name=machine_name(pool, task_id, attempt),
        events=MachineRecords(
            pool, task_id, attempt, owner_key=owner_key, on_machine=on_machine, debug=debug
        ),
        debug_keys=debug.public_keys if debug is not None else (),
        debug_keys_file=config.get("debug_keys_file", DEBUG_KEYS_FILE),
    )
