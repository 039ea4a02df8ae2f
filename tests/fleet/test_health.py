"""Builder health against real SSH hosts: probes take silent hosts down and bring them back."""

import json
import os
import signal
import subprocess
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.builds.models import BuildTask, State
from apps.builds.scheduler import schedule_pending_tasks
from apps.fleet.health import builder_probe, builders_to_probe
from apps.fleet.models import Builder, BuilderPool, BuilderState, PoolKind
from apps.fleet.services import ssh_pool_sync
from builders.transports.ssh import runner_version
from tests.builds.test_scheduler import pending_task
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db


def test_a_probe_takes_a_silent_host_down_and_brings_it_back(ssh_hosts):
    (host,) = ssh_hosts(1)
    pool = BuilderPool.objects.create(
        name="ssh",
        kind=PoolKind.SSH,
        arches=["x86_64"],
        config={"hosts": [host.pool_host_config()]},
    )
    (builder,) = ssh_pool_sync(pool=pool)
    host.kill_everything()

    assert builder_probe(builder) is False
    builder.refresh_from_db()
    assert builder.state == BuilderState.DOWN
    assert "Connection refused" in builder.state_reason

    host.start_sshd()
    assert builder_probe(builder) is True
    builder.refresh_from_db()
    assert (builder.state, builder.state_reason) == (BuilderState.READY, "")
    assert builder.runner_version == runner_version()


def test_only_ssh_builders_not_seen_lately_are_probed():
    pool = BuilderPool.objects.create(name="ssh", kind=PoolKind.SSH, arches=["x86_64"])
    old = timezone.now() - timedelta(minutes=5)
    stale = Builder.objects.create(pool=pool, name="stale", last_seen_on=old)
    Builder.objects.create(pool=pool, name="fresh")
    Builder.objects.create(pool=pool, name="drained", state=BuilderState.DRAINING, last_seen_on=old)
    local = BuilderPool.objects.create(name="here", kind=PoolKind.LOCAL)
    Builder.objects.create(pool=local, name="local", last_seen_on=old)

    assert list(builders_to_probe()) == [stale]


def test_only_down_machine_pools_are_probed_they_have_no_idle_machine_to_ask():
    old = timezone.now() - timedelta(minutes=5)
    for name, kind in (("vms", PoolKind.VM), ("cloud", PoolKind.COMMAND)):
        pool = BuilderPool.objects.create(name=name, kind=kind, arches=["x86_64"])
        Builder.objects.create(pool=pool, name=f"{name}-up", last_seen_on=old)
        Builder.objects.create(
            pool=pool, name=f"{name}-down", state=BuilderState.DOWN, last_seen_on=old
        )

    assert sorted(b.name for b in builders_to_probe()) == ["cloud-down", "vms-down"]


def test_a_probe_sweeps_the_jobs_dead_workers_left_on_the_host(ssh_hosts):
    (host,) = ssh_hosts(1)
    config = {"hosts": [host.pool_host_config()]}
    pool = BuilderPool.objects.create(
        name="ssh", kind=PoolKind.SSH, arches=["x86_64"], config=config
    )
    (builder,) = ssh_pool_sync(pool=pool)
    running = pending_task(ProjectFactory())
    BuildTask.objects.filter(pk=running.pk).update(state=State.RUNNING, builder=builder)
    jobs = host.work_dir / "jobs"
    # A job of a worker that died an hour ago, still running; the running task's job; and a
    # job that started a moment ago (its task may have started after the portal looked).
    orphan = subprocess.Popen(["sleep", "600"], start_new_session=True)
    # Each job's build workspace, where its job file says the runner makes them.
    workspaces = host.directory / "workspaces"
    for name, pid in ((running.task_id, None), ("77-fedora-43-x86_64", orphan.pid), ("78", None)):
        (jobs / name / "results").mkdir(parents=True)
        if pid:
            (jobs / name / "pid").write_text(f"{pid}\n")
        spec = {"workspaces_root": str(workspaces), "workspace_name": f"task-{name}"}
        (jobs / name / "job.json").write_text(json.dumps(spec))
        (workspaces / f"coprsite-build-task-{name}-abc" / "build").mkdir(parents=True)
    an_hour_ago = time.time() - 3600
    for name in (running.task_id, "77-fedora-43-x86_64"):
        os.utime(jobs / name, (an_hour_ago, an_hour_ago))

    assert builder_probe(builder) is True

    assert sorted(path.name for path in jobs.iterdir()) == sorted([running.task_id, "78"])
    assert orphan.wait(timeout=10) == -signal.SIGKILL
    left = sorted(path.name for path in workspaces.iterdir())
    assert left == sorted(f"coprsite-build-task-{name}-abc" for name in (running.task_id, "78"))


def test_a_host_declared_for_an_arch_it_is_not_goes_down_with_the_reason_and_gets_no_build(
    ssh_hosts,
):
    (host,) = ssh_hosts(1)  # an x86_64 machine, like this one
    BuilderPool.objects.filter(kind=PoolKind.LOCAL).update(enabled=False)
    pool = BuilderPool.objects.create(
        name="arm",
        kind=PoolKind.SSH,
        arches=["aarch64"],
        config={"hosts": [host.pool_host_config(arches=["aarch64"])]},
    )
    (builder,) = ssh_pool_sync(pool=pool)
    task = pending_task(ProjectFactory(), chroot_name="fedora-43-aarch64")

    assert builder_probe(builder) is False

    builder.refresh_from_db()
    assert builder.state == BuilderState.DOWN
    assert builder.state_reason == (
        "builder arm-host0 is declared for aarch64 but is x86_64 (rpm --eval %_arch: x86_64, "
        "uname -m: x86_64): it cannot build aarch64"
    )
    assert schedule_pending_tasks() == []
    task.refresh_from_db()
    assert (task.state, task.builder_id) == (State.PENDING, None)
    # Shown in the console with its reason.
    change = builder.state_changes.get()
    assert (change.previous_state, change.state) == (BuilderState.READY, BuilderState.DOWN)
    assert change.reason == builder.state_reason
