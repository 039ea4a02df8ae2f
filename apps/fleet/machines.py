"""Disposable machines of vm and command pools: recorded before `new`, forgotten after `delete`.

The transport (builders/transports/command.py) reports each step here. When the worker
that made a machine dies, its row outlives it: the worker that reattaches to the task's
job finds the machine by it (`MachineRecords.attached`), and reconcile runs the pool's
`delete` for every machine whose task attempt no longer runs (`machines_reconcile`).

The lifecycle is resalloc's: reconcile makes `min_ready` machines ahead of the tasks
(`machines_to_make_ahead`, `machine_make_ahead`); a task takes a ready one when there is
one (`machine_take`); a machine that built an owner's project successfully waits, `ready`,
for that owner and project's next task, up to the pool's `reuse_builds` builds
(`machine_keep`), and is deleted when it has idled `reuse_idle_seconds`. A machine never
runs builds of two owners or projects.

SSH access for debugging: a task that asks for it gets a fresh machine of its own; after
its build the user's keys are installed there and the machine is `kept` for that user
until `kept_until` (`machine_keep_for_debugging`), never to run another build. Reconcile
deletes it then (`expired_debug_machines`), or sooner when the user gives it up
(`debug_machine_release`).
"""

import logging
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from apps.core.queue import send_on_commit
from apps.fleet.models import BuilderPool, BuilderState, Machine, MachineState, PoolKind
from apps.fleet.services import command_pool_config, vm_pool_config
from builders.transports import command
from builders.transports.command import CommandFailed, MachineCommands, machine_delete
from builders.vm import vm_commands

logger = logging.getLogger(__name__)
# A machine whose task ended is deleted by its own worker within moments; reconcile waits
# this long before it steps in, and as long again before it retries a failed `delete`.
RECONCILE_GRACE_SECONDS = 60
# A kept machine waits this long for its owner's next build unless the pool's config says
# `reuse_idle_seconds`: an idle machine costs the cloud as much as a busy one.
REUSE_IDLE_SECONDS = 300
# The states of a machine that exists or will: what counts against the pool's max_builders.
LIVE_STATES = (
    MachineState.CREATING,
    MachineState.READY,
    MachineState.RUNNING,
    MachineState.KEPT,
)


def machine_name(pool: BuilderPool, task_id: int | None, attempt: int, *, job: str = "") -> str:
    """Unique, and safe as a file or host name: the pool, the task attempt, a random tail."""
    pool_part = re.sub(r"[^a-z0-9]+", "-", pool.name.lower()).strip("-")[:40] or "pool"
    job_part = job or (f"t{task_id}a{attempt}" if task_id is not None else "probe")
    return f"{pool_part}-{job_part}-{secrets.token_hex(3)}"


def machine_commands(pool: BuilderPool) -> MachineCommands:
    """The pool's `new` and `delete`: the operator's for a command pool, builders.vm's for a
    vm pool (PoolConfigError when the config cannot be used)."""
    if pool.kind == PoolKind.VM:
        return vm_commands(vm_pool_config(pool), arch=pool.arch)
    config = command_pool_config(pool)
    return MachineCommands(
        new=config["new"],
        delete=config["delete"],
        new_timeout=config.get("new_timeout", 600),
        delete_timeout=config.get("delete_timeout", 300),
        env=config.get("env", {}),
    )


class MachineRecords:
    """The MachineEvents of one task attempt (or probe), written as rows of Machine.

    `owner_key` ("owner/project") lets the attempt take a ready machine and keep it for the
    owner's next build; a probe has none and always makes its own. `on_machine(name,
    seconds)` hears which machine the attempt got and how long it waited for it. `debug`
    (a DebugAccess) makes the attempt's machine its own, kept for its user afterwards.
    """

    def __init__(
        self,
        pool: BuilderPool,
        task_id: int | None = None,
        attempt: int = 0,
        *,
        owner_key: str = "",
        on_machine=None,
        debug: "DebugAccess | None" = None,
    ) -> None:
        self.pool = pool
        self.debug = debug
        self.task_id = task_id
        self.attempt = attempt
        self.owner_key = owner_key
        self.on_machine = on_machine

    def take(self) -> command.Machine | None:
        if not self.owner_key or self.debug is not None:
            return None
        return machine_take(
            self.pool, task_id=self.task_id, attempt=self.attempt, owner_key=self.owner_key
        )

    def attached(self) -> command.Machine | None:
        row = Machine.objects.filter(
            pool=self.pool,
            task_id=self.task_id,
            attempt=self.attempt,
            state=MachineState.RUNNING,
        ).first()
        return machine_from_row(row) if row is not None else None

    def creating(self, name: str) -> None:
        Machine.objects.create(
            pool=self.pool,
            name=name,
            task_id=self.task_id,
            attempt=self.attempt,
            owner_key=self.owner_key,
        )

    def created(self, machine: command.Machine) -> None:
        _update(
            machine.name,
            state=MachineState.RUNNING,
            address=machine.address,
            login=machine_login(machine),
        )

    def acquired(self, machine: command.Machine, waited: float) -> None:
        if self.on_machine is not None:
            self.on_machine(machine.name, waited)

    def keep(self, machine: command.Machine) -> bool:
        if not self.owner_key:
            return False
        return machine_keep(self.pool, machine.name)

    def kept_for_debugging(self, machine: command.Machine) -> bool:
        if self.debug is None:
            return False
        return machine_keep_for_debugging(machine.name, self.debug)

    def deleted(self, name: str) -> None:
        Machine.objects.filter(name=name).delete()

    def delete_failed(self, name: str, reason: str) -> None:
        logger.error("machine %s: %s", name, reason)
        _update(name, state=MachineState.DELETE_FAILED, state_reason=reason[:500])


def _update(name: str, **fields) -> int:
    return Machine.objects.filter(name=name).update(updated_on=timezone.now(), **fields)


def machine_login(machine: command.Machine) -> dict:
    """What `new` printed besides the address, for whoever takes the machine next."""
    fields = ("port", "user", "host_key", "key_path", "debug_keys_file")
    return {key: getattr(machine, key) for key in fields if getattr(machine, key) is not None}


def machine_from_row(row: Machine) -> command.Machine:
    return command.Machine(name=row.name, address=row.address, **row.login)


def machine_take(
    pool: BuilderPool, *, task_id: int | None, attempt: int, owner_key: str
) -> command.Machine | None:
    """A ready machine for a task of `owner_key`, claimed: first one kept from this owner
    and project's last build, else one made ahead. None when the task must make its own;
    then, at the pool's max_builders, a machine kept for another owner makes room."""
    with transaction.atomic():
        ready = Machine.objects.select_for_update(skip_locked=True).filter(
            pool=pool, state=MachineState.READY
        )
        row = (
            ready.filter(owner_key=owner_key).order_by("updated_on", "pk").first()
            or ready.filter(owner_key="").order_by("pk").first()
        )
        if row is None:
            _make_room(pool, owner_key)
            return None
        _update(
            row.name,
            state=MachineState.RUNNING,
            task_id=task_id,
            attempt=attempt,
            owner_key=owner_key,
        )
    return machine_from_row(row)


def _make_room(pool: BuilderPool, owner_key: str) -> None:
    """Delete the longest idle machine kept for another owner when the pool is full."""
    if Machine.objects.filter(pool=pool, state__in=LIVE_STATES).count() < pool.max_builders:
        return
    idle = (
        Machine.objects.filter(pool=pool, state=MachineState.READY)
        .exclude(owner_key__in=["", owner_key])
        .order_by("updated_on", "pk")
        .first()
    )
    if idle is not None and _claim_for_delete(idle.name, MachineState.READY):
        send_on_commit("delete_machine", idle.pk)


def machine_keep(pool: BuilderPool, name: str) -> bool:
    """After a successful build: keep the machine for its owner's next one, unless it has
    run the pool's reuse_builds builds (then the caller deletes it). True when kept."""
    row = Machine.objects.filter(name=name).first()
    if row is None:
        return False
    builds = row.builds + 1
    pool.refresh_from_db(fields=["reuse_builds", "enabled"])
    if builds >= pool.reuse_builds or not pool.enabled:
        _update(name, builds=builds)
        return False
    return bool(_update(name, state=MachineState.READY, task_id=None, attempt=0, builds=builds))


@dataclass(frozen=True)
class DebugAccess:
    """Who gets a task's machine after its build, for how long, with which keys."""

    user_id: int
    public_keys: tuple[str, ...]
    hours: int


def machine_keep_for_debugging(name: str, debug: DebugAccess) -> bool:
    """The machine waits for its user (their keys are installed) until it expires."""
    until = timezone.now() + timedelta(hours=debug.hours)
    kept = Machine.objects.filter(name=name, state=MachineState.RUNNING).update(
        state=MachineState.KEPT,
        kept_for_id=debug.user_id,
        kept_until=until,
        task_id=None,
        attempt=0,
        updated_on=timezone.now(),
    )
    return kept == 1


def debug_machines_held(user_id: int) -> int:
    """The machines kept for a user's SSH debugging now."""
    return Machine.objects.filter(kept_for_id=user_id, state=MachineState.KEPT).count()


def expired_debug_machines() -> list[Machine]:
    """Kept machines whose time is up."""
    return list(Machine.objects.filter(state=MachineState.KEPT, kept_until__lte=timezone.now()))


def debug_machine_release(machine: Machine) -> bool:
    """Give a kept machine up before its time: claimed for deletion, its `delete` queued.
    False when it was not kept (any more)."""
    if not _claim_for_delete(machine.name, MachineState.KEPT):
        return False
    send_on_commit("delete_machine", machine.pk)
    return True


def machines_to_make_ahead() -> list[int]:
    """Rows for the machines each pool lacks to have min_ready ready ones, never past its
    max_builders; returns their ids for machine_make_ahead. A pool that is disabled or
    down gets none."""
    ids = []
    pools = BuilderPool.objects.filter(
        enabled=True, kind__in=(PoolKind.VM, PoolKind.COMMAND), min_ready__gt=0
    ).exclude(builders__state=BuilderState.DOWN)
    for pool in pools:
        with transaction.atomic():
            # The pool row locked: two workers' reconcile ticks never both fill the gap.
            BuilderPool.objects.select_for_update().filter(pk=pool.pk).first()
            ids += _make_ahead_rows(pool)
    return ids


def _make_ahead_rows(pool: BuilderPool) -> list[int]:
    live = Machine.objects.filter(pool=pool, state__in=LIVE_STATES)
    spare = live.filter(owner_key="", task_id__isnull=True).exclude(state=MachineState.RUNNING)
    missing = min(pool.min_ready - spare.count(), pool.max_builders - live.count())
    rows = [
        Machine.objects.create(
            pool=pool, name=machine_name(pool, None, 0, job="ready"), made_ahead=True
        )
        for _ in range(max(missing, 0))
    ]
    return [row.pk for row in rows]


def machine_make_ahead(machine_id: int) -> bool:
    """Run `new` for a machine reconcile asked for; it waits `ready` for a task. A failed
    `new` leaves the row to reconcile, which runs `delete` for it after the grace period."""
    row = Machine.objects.select_related("pool").filter(pk=machine_id).first()
    if row is None or row.state != MachineState.CREATING:
        return False
    try:
        machine = command.machine_new(machine_commands(row.pool), row.name)
    except CommandFailed as failed:
        logger.error("pool %s could not make machine %s: %s", row.pool.name, row.name, failed)
        _update(row.name, state_reason=str(failed)[:500])
        return False
    assert machine is not None  # nothing cancels it
    _update(
        row.name,
        state=MachineState.READY,
        address=machine.address,
        login=machine_login(machine),
        state_reason="",
    )
    return True


def leaked_machines(live: Iterable[tuple[int, int]]):
    """Machines whose task attempt is not among `live` (task id, attempt) pairs any more;
    a ready machine is none of those: it waits for a task (idle_machines says when not),
    nor is a kept one: it waits for its user (expired_debug_machines says when not)."""
    live = set(live)
    quiet = timezone.now() - timedelta(seconds=RECONCILE_GRACE_SECONDS)
    candidates = (
        Machine.objects.filter(updated_on__lt=quiet)
        .exclude(state__in=(MachineState.READY, MachineState.KEPT))
        .select_related("pool")
        .order_by("pk")
    )
    return [m for m in candidates if (m.task_id, m.attempt) not in live]


def idle_machines() -> list[Machine]:
    """Ready machines no longer wanted: kept for an owner longer than the pool's
    reuse_idle_seconds, made ahead beyond its min_ready, or of a pool turned off."""
    unwanted = []
    for pool in BuilderPool.objects.filter(machines__state=MachineState.READY).distinct():
        ready = pool.machines.filter(state=MachineState.READY)
        if not pool.enabled:
            unwanted += list(ready)
            continue
        idle_for = pool.config.get("reuse_idle_seconds", REUSE_IDLE_SECONDS)
        since = timezone.now() - timedelta(seconds=idle_for)
        unwanted += list(ready.exclude(owner_key="").filter(updated_on__lt=since))
        spare = ready.filter(owner_key="").order_by("-pk")
        unwanted += list(spare[pool.min_ready :])
    return unwanted


def machines_reconcile(*, live: Iterable[tuple[int, int]]) -> list[int]:
    """Claim every leaked or unwanted idle machine, and every machine kept for SSH
    debugging whose time is up, for deletion; returns the ids to hand to `delete`."""
    claimed = []
    for machine in leaked_machines(live):
        # One claim per grace period: two reconcile ticks never delete the same one at once.
        if _update(machine.name, state=MachineState.DELETING) == 1:
            claimed.append(machine.pk)
    for machine in idle_machines():
        if _claim_for_delete(machine.name, MachineState.READY):
            claimed.append(machine.pk)
    for machine in expired_debug_machines():
        if _claim_for_delete(machine.name, MachineState.KEPT):
            claimed.append(machine.pk)
    return claimed


def _claim_for_delete(name: str, state: str) -> bool:
    """A ready machine a task may be taking right now is claimed only if it is still ready."""
    claimed = Machine.objects.filter(name=name, state=state).update(
        state=MachineState.DELETING, updated_on=timezone.now()
    )
    return claimed == 1


def machine_delete_leaked(machine_id: int) -> bool:
    """Run the pool's `delete` for a leaked machine; True when it is gone."""
    machine = Machine.objects.select_related("pool").filter(pk=machine_id).first()
    if machine is None:
        return True
    try:
        machine_delete(machine_commands(machine.pool), machine.name, machine.address)
    except CommandFailed as failed:
        MachineRecords(machine.pool).delete_failed(machine.name, str(failed))
        return False
    logger.info("deleted leaked machine %s of pool %s", machine.name, machine.pool.name)
    machine.delete()
    return True
