"""Disposable machines of vm and command pools: recorded before `new`, forgotten after `delete`.

The transport (builders/transports/command.py) reports each step here. When the worker
that made a machine dies, its row outlives it, and reconcile runs the pool's `delete`
for every machine whose task attempt no longer runs (`machines_reconcile`).
"""

import logging
import re
import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.utils import timezone

from apps.fleet.models import BuilderPool, Machine, MachineState, PoolKind
from apps.fleet.services import command_pool_config, vm_pool_config
from builders.transports.command import CommandFailed, MachineCommands, machine_delete
from builders.vm import vm_commands

logger = logging.getLogger(__name__)
# A machine whose task ended is deleted by its own worker within moments; reconcile waits
# this long before it steps in, and as long again before it retries a failed `delete`.
RECONCILE_GRACE_SECONDS = 60


def machine_name(pool: BuilderPool, task_id: int | None, attempt: int) -> str:
    """Unique, and safe as a file or host name: the pool, the task attempt, a random tail."""
    pool_part = re.sub(r"[^a-z0-9]+", "-", pool.name.lower()).strip("-")[:40] or "pool"
    job_part = f"t{task_id}a{attempt}" if task_id is not None else "probe"
    return f"{pool_part}-{job_part}-{secrets.token_hex(3)}"


def machine_commands(pool: BuilderPool) -> MachineCommands:
    """The pool's `new` and `delete`: the operator's for a command pool, builders.vm's for a
    vm pool (PoolConfigError when the config cannot be used)."""
    if pool.kind == PoolKind.VM:
        return vm_commands(vm_pool_config(pool))
    config = command_pool_config(pool)
    return MachineCommands(
        new=config["new"],
        delete=config["delete"],
        new_timeout=config.get("new_timeout", 600),
        delete_timeout=config.get("delete_timeout", 300),
        env=config.get("env", {}),
    )


class MachineRecords:
    """The MachineEvents of one task attempt (or probe), written as rows of Machine."""

    def __init__(self, pool: BuilderPool, task_id: int | None = None, attempt: int = 0) -> None:
        self.pool = pool
        self.task_id = task_id
        self.attempt = attempt

    def creating(self, name: str) -> None:
        Machine.objects.create(
            pool=self.pool, name=name, task_id=self.task_id, attempt=self.attempt
        )

    def created(self, machine) -> None:
        _update(machine.name, state=MachineState.RUNNING, address=machine.address)

    def deleted(self, name: str) -> None:
        Machine.objects.filter(name=name).delete()

    def delete_failed(self, name: str, reason: str) -> None:
        logger.error("machine %s: %s", name, reason)
        _update(name, state=MachineState.DELETE_FAILED, state_reason=reason[:500])


def _update(name: str, **fields) -> int:
    return Machine.objects.filter(name=name).update(updated_on=timezone.now(), **fields)


def leaked_machines(live: Iterable[tuple[int, int]]):
    """Machines whose task attempt is not among `live` (task id, attempt) pairs any more."""
    live = set(live)
    quiet = timezone.now() - timedelta(seconds=RECONCILE_GRACE_SECONDS)
    candidates = Machine.objects.filter(updated_on__lt=quiet).select_related("pool").order_by("pk")
    return [m for m in candidates if (m.task_id, m.attempt) not in live]


def machines_reconcile(*, live: Iterable[tuple[int, int]]) -> list[int]:
    """Claim every leaked machine for deletion; returns the ids to hand to `delete`."""
    claimed = []
    for machine in leaked_machines(live):
        # One claim per grace period: two reconcile ticks never delete the same one at once.
        if _update(machine.name, state=MachineState.DELETING) == 1:
            claimed.append(machine.pk)
    return claimed


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
