"""vm and command pools: their config, their one builder, the commands, reconcile of leaks."""

import os
import subprocess
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.builds.models import BuildTask, State
from apps.builds.scheduler import schedule_pending_tasks
from apps.fleet.machines import (
    RECONCILE_GRACE_SECONDS,
    machine_delete_leaked,
    machine_make_ahead,
    machine_take,
    machines_reconcile,
    machines_to_make_ahead,
)
from apps.fleet.models import BuilderPool, Machine, MachineState, PoolKind
from apps.fleet.services import (
    PoolConfigError,
    builder_drain,
    builder_resume,
    machine_pool_sync,
    pools_sync,
    vm_pool_config,
)
from apps.fleet.transports import transport_for
from builders.transports.command import (
    CommandFailed,
    CommandTransport,
    MachineCommands,
    machine_delete,
    machine_new,
    parse_machine,
)
from builders.vm import vm_commands
from tests.builds.test_scheduler import pending_task
from tests.factories import ProjectFactory
from tests.fleet.test_ssh_pools import HOST_KEY, without_local_pool

pytestmark = pytest.mark.django_db


def command_pool(tmp_path, **config) -> BuilderPool:
    log = tmp_path / "calls.log"
    return BuilderPool.objects.create(
        name="cloud",
        kind=PoolKind.COMMAND,
        arches=["x86_64", "aarch64"],
        max_builders=3,
        config={
            "new": f'echo "new $COPRSITE_MACHINE_NAME" >> {log}; echo 192.0.2.7',
            "delete": f'echo "delete $COPRSITE_MACHINE_NAME $COPRSITE_MACHINE_ADDRESS" >> {log}',
            "known_host_key": HOST_KEY,
            "key_path": "/etc/coprsite/builder_key",
            **config,
        },
    )


VM = {"image": "/var/cache/coprsite/vm-images/bookworm-aarch64-0123456789abcdef"}


@pytest.mark.parametrize(
    ("kind", "config", "message"),
    [
        (PoolKind.COMMAND, {"delete": "true"}, "config needs 'new', a shell command"),
        (PoolKind.COMMAND, {"new": "", "delete": "true"}, "config needs 'new'"),
        (PoolKind.COMMAND, {"new": ["x", 1], "delete": "true"}, "config needs 'new'"),
        (PoolKind.COMMAND, {"new": "a", "delete": "b", "port": "22"}, "port must be a number"),
        (PoolKind.COMMAND, {"new": "a", "delete": "b", "env": {"A": 1}}, "env is an object"),
        (PoolKind.VM, {}, 'config needs "image"'),
        (PoolKind.VM, {"image": "/i", "memory_mib": 0}, "memory_mib must be a positive"),
        (PoolKind.VM, {"image": "/i", "cpus": True}, "cpus must be a number"),
        (PoolKind.VM, {"image": "/i", "accel": "xen"}, "accel is one of auto, kvm, tcg"),
    ],
)
def test_a_broken_config_is_refused_with_the_entry_named(kind, config, message):
    pool = BuilderPool.objects.create(name="p", kind=kind, arches=["x86_64"], config=config)

    with pytest.raises(PoolConfigError, match=message):
        machine_pool_sync(pool=pool)
    assert not pool.builders.exists()


def test_a_vm_pool_serves_its_vms_arch_and_refuses_arches_they_cannot_build():
    arm = BuilderPool.objects.create(name="arm", kind=PoolKind.VM, arch="aarch64", config=VM)
    x86 = BuilderPool.objects.create(name="x86", kind=PoolKind.VM, arches=["i686"], config=VM)
    mixed = BuilderPool.objects.create(
        name="mixed", kind=PoolKind.VM, arch="aarch64", arches=["aarch64", "x86_64"], config=VM
    )

    assert machine_pool_sync(pool=arm).arches == ["aarch64"]
    assert x86.arch == "x86_64" and machine_pool_sync(pool=x86).arches == ["i686"]
    with pytest.raises(PoolConfigError, match="its aarch64 VMs cannot build x86_64"):
        machine_pool_sync(pool=mixed)
    assert vm_commands(vm_pool_config(arm), arch=arm.arch).new[-2:] == ["--arch", "aarch64"]
    # The machine's check probes what the VM really is against the pool's arch.
    assert transport_for(arm.builders.get()).ssh_defaults.arches == ("aarch64",)


def test_a_machine_pool_has_one_builder_with_a_slot_per_machine(tmp_path):
    pool = command_pool(tmp_path)
    BuilderPool.objects.create(name="broken", kind=PoolKind.VM, arches=["x86_64"])

    pools_sync()  # the broken pool is logged and skipped, the other one synced

    (builder,) = pool.builders.all()
    assert (builder.name, builder.slots, builder.arches) == (
        "cloud-machines",
        3,
        ["x86_64", "aarch64"],
    )
    pool.max_builders = 5
    pool.save()
    pools_sync()
    builder.refresh_from_db()
    assert builder.slots == 5


def test_the_scheduler_hands_a_machine_pool_as_many_tasks_as_it_may_run(tmp_path):
    without_local_pool()
    pool = command_pool(tmp_path)
    machine_pool_sync(pool=pool)
    project = ProjectFactory()
    tasks = [pending_task(project) for _ in range(4)]

    assigned = schedule_pending_tasks()

    assert assigned == [task.pk for task in tasks[:3]]
    builder = BuildTask.objects.get(pk=assigned[0]).builder
    assert builder.pool == pool


def test_a_vm_pool_runs_builders_vm_with_the_sizes_of_its_config():
    pool = BuilderPool.objects.create(
        name="vms",
        kind=PoolKind.VM,
        arches=["x86_64"],
        config={"image": "/var/cache/img", "memory_mib": 1024, "cpus": 1, "boot_timeout": 30},
    )
    builder = machine_pool_sync(pool=pool)

    transport = transport_for(builder)

    assert isinstance(transport, CommandTransport)
    new = transport.commands.new
    assert new[1:4] == ["-m", "builders.vm", "new"]
    assert dict(zip(new[4::2], new[5::2], strict=True)) == {
        "--image": "/var/cache/img",
        "--memory-mib": "1024",
        "--cpus": "1",
        "--disk-mib": "8192",
        "--boot-timeout": "30",
        "--accel": "auto",
        "--arch": "x86_64",
    }
    assert transport.commands.delete[1:] == ["-m", "builders.vm", "delete"]
    assert transport.commands.new_timeout == 90


def test_new_prints_key_value_lines_or_a_bare_address():
    output = "booting...\naddress=127.0.0.1\nport=2201\nhost_key=ssh-ed25519 AA\n"
    machine = parse_machine("m", output)
    assert (machine.address, machine.port, machine.host_key, machine.user) == (
        "127.0.0.1",
        2201,
        "ssh-ed25519 AA",
        None,
    )
    assert parse_machine("m", "\n198.51.100.4\n").address == "198.51.100.4"
    with pytest.raises(CommandFailed, match="printed no address"):
        parse_machine("m", "user=root\n")
    with pytest.raises(CommandFailed, match="not a number"):
        parse_machine("m", "address=a\nport=ssh\n")


def test_commands_get_the_machine_name_and_address_and_their_failures_say_why(tmp_path):
    log = tmp_path / "log"
    commands = MachineCommands(
        new=f'echo "$COPRSITE_MACHINE_NAME $POOL_ZONE" > {log}; echo address=203.0.113.9',
        delete=f'echo "$COPRSITE_MACHINE_NAME $COPRSITE_MACHINE_ADDRESS" >> {log}; exit 3',
        env={"POOL_ZONE": "eu-1"},
    )

    machine = machine_new(commands, "cloud-t1a0-abc")
    assert machine.address == "203.0.113.9"
    with pytest.raises(CommandFailed, match="`delete` exited with status 3"):
        machine_delete(commands, "cloud-t1a0-abc", machine.address)
    assert log.read_text().splitlines() == ["cloud-t1a0-abc eu-1", "cloud-t1a0-abc 203.0.113.9"]


def test_a_hanging_new_is_killed_with_its_children_at_its_timeout(tmp_path):
    pid_file = tmp_path / "child"
    commands = MachineCommands(
        new=f"sleep 300 & echo $! > {pid_file}; wait", delete="true", new_timeout=1
    )
    started = time.monotonic()

    with pytest.raises(CommandFailed, match="`new` did not finish within 1 s; killed"):
        machine_new(commands, "m")

    assert time.monotonic() - started < 5
    assert _dies_soon(int(pid_file.read_text()))


def test_a_cancel_stops_new_and_gives_no_machine(tmp_path):
    commands = MachineCommands(new="sleep 300", delete="true")
    started = time.monotonic()
    half_a_second_later = lambda: time.monotonic() - started > 0.5  # noqa: E731

    assert machine_new(commands, "m", should_cancel=half_a_second_later) is None
    assert time.monotonic() - started < 5


def _dies_soon(pid: int, within: float = 3.0) -> bool:
    # SIGKILL to the group is sent at once but an orphaned child dies (and is reaped)
    # a moment later, so a busy machine may still show it right after the kill.
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not os.path.exists(f"/proc/{pid}") or _is_zombie(pid):
            return True
        time.sleep(0.05)
    return False


def _is_zombie(pid: int) -> bool:
    status = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True)
    return status.stdout.strip().startswith("Z")


def leaked(pool, name, *, task_id, attempt=0, age=RECONCILE_GRACE_SECONDS + 1, **fields):
    return Machine.objects.create(
        pool=pool,
        name=name,
        task_id=task_id,
        attempt=attempt,
        updated_on=timezone.now() - timedelta(seconds=age),
        **fields,
    )


def test_reconcile_deletes_machines_whose_task_attempt_no_longer_runs(tmp_path):
    pool = command_pool(tmp_path)
    project = ProjectFactory()
    running = pending_task(project)
    BuildTask.objects.filter(pk=running.pk).update(state=State.RUNNING, attempt=1)
    ended = pending_task(project)
    BuildTask.objects.filter(pk=ended.pk).update(state=State.SUCCEEDED)
    keep = leaked(pool, "keep", task_id=running.pk, attempt=1, address="192.0.2.1")
    young = leaked(pool, "young", task_id=ended.pk, age=5)
    old_attempt = leaked(pool, "old-attempt", task_id=running.pk, attempt=0, address="192.0.2.2")
    gone = leaked(pool, "gone", task_id=ended.pk)
    probe = leaked(pool, "probe", task_id=None, state=MachineState.DELETE_FAILED)
    live = BuildTask.objects.filter(state=State.RUNNING).values_list("pk", "attempt")

    claimed = machines_reconcile(live=live)

    assert sorted(claimed) == sorted([old_attempt.pk, gone.pk, probe.pk])
    assert machines_reconcile(live=live) == []  # claimed once per grace period
    for machine_id in claimed:
        assert machine_delete_leaked(machine_id)
    assert set(Machine.objects.values_list("name", flat=True)) == {keep.name, young.name}
    assert (tmp_path / "calls.log").read_text().splitlines() == [
        "delete old-attempt 192.0.2.2",
        "delete gone ",
        "delete probe ",
    ]


def test_a_failing_delete_keeps_the_row_for_the_next_reconcile(tmp_path):
    pool = command_pool(tmp_path, delete="echo 'cloud API down' >&2; exit 1")
    machine = leaked(pool, "stuck", task_id=None)

    (claimed,) = machines_reconcile(live=[])

    assert machine_delete_leaked(claimed) is False
    machine.refresh_from_db()
    assert machine.state == MachineState.DELETE_FAILED
    assert "cloud API down" in machine.state_reason


def test_a_drained_machine_pool_makes_no_new_machines(tmp_path):
    without_local_pool()
    builder = machine_pool_sync(pool=command_pool(tmp_path))
    pending_task(ProjectFactory())

    builder_drain(builder_ids=[builder.pk])

    assert schedule_pending_tasks() == []
    builder_resume(builder_ids=[builder.pk])
    assert len(schedule_pending_tasks()) == 1


def test_reconcile_makes_min_ready_machines_never_past_max_builders(tmp_path):
    pool = command_pool(tmp_path)  # max_builders 3
    BuilderPool.objects.filter(pk=pool.pk).update(min_ready=2)
    pool.refresh_from_db()
    busy = leaked(pool, "busy", task_id=1, state=MachineState.RUNNING, owner_key="a/p")
    kept = leaked(pool, "kept", task_id=None, state=MachineState.READY, owner_key="a/p", age=5)

    made = machines_to_make_ahead()

    assert len(made) == 1  # two ready asked for, one more allowed beside busy and kept
    assert machines_to_make_ahead() == []  # the row counts while `new` runs
    assert machine_make_ahead(made[0])
    ready = Machine.objects.get(pk=made[0])
    assert (ready.state, ready.owner_key, ready.address) == (MachineState.READY, "", "192.0.2.7")
    assert ready.login == {}  # `new` printed only the address: the config has the rest
    assert {busy.name, kept.name} < set(Machine.objects.values_list("name", flat=True))


def test_reconcile_deletes_ready_machines_idle_too_long_or_beyond_min_ready(tmp_path):
    pool = command_pool(tmp_path, reuse_idle_seconds=120)
    BuilderPool.objects.filter(pk=pool.pk).update(min_ready=1)
    ready = {"task_id": None, "state": MachineState.READY}
    spares = [leaked(pool, f"spare-{n}", **ready) for n in range(2)]
    fresh = leaked(pool, "fresh", owner_key="a/p", age=60, **ready)
    stale = leaked(pool, "stale", owner_key="a/p", age=121, **ready)

    claimed = machines_reconcile(live=[])

    assert sorted(claimed) == sorted([spares[0].pk, stale.pk])  # the older spare goes
    assert set(Machine.objects.filter(state=MachineState.READY).values_list("name", flat=True)) == {
        spares[1].name,
        fresh.name,
    }


def test_a_task_takes_its_owners_kept_machine_first_and_never_anothers(tmp_path):
    pool = command_pool(tmp_path)
    ready = {"task_id": None, "state": MachineState.READY, "address": "192.0.2.9"}
    others = leaked(pool, "others", owner_key="b/p", **ready)
    spare = leaked(pool, "spare", **ready)
    mine = leaked(pool, "mine", owner_key="a/p", **ready)

    first = machine_take(pool, task_id=7, attempt=0, owner_key="a/p")
    second = machine_take(pool, task_id=8, attempt=0, owner_key="a/p")
    third = machine_take(pool, task_id=9, attempt=0, owner_key="a/p")

    assert (first.name, second.name, third) == (mine.name, spare.name, None)
    spare.refresh_from_db()
    assert (spare.state, spare.owner_key, spare.task_id) == (MachineState.RUNNING, "a/p", 8)
    # The third makes its own, and the pool is at max_builders (3): the machine kept for
    # another owner goes to make room.
    others.refresh_from_db()
    assert others.state == MachineState.DELETING
