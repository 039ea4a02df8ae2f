"""Builds on the machines of a command pool, with the real worker and real `new`/`delete`
commands: each machine a network namespace with its own sshd (tests/builders/netns_machine.py).
"""

import contextlib
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from apps.builds import execution
from apps.builds.actors import schedule_tasks
from apps.builds.models import Build, BuildTask, State
from apps.builds.scheduler import schedule_pending_tasks
from apps.builds.services import (
    BuildOptions,
    build_cancel,
    build_submit,
    live_task_attempts,
)
from apps.fleet.health import builder_probe
from apps.fleet.machines import RECONCILE_GRACE_SECONDS, machine_delete_leaked, machines_reconcile
from apps.fleet.models import Builder, BuilderPool, BuilderState, Machine, PoolKind
from apps.fleet.services import local_pool_ensure, machine_pool_sync
from apps.workflows.reconcile import reconcile_all
from tests.builders.srpm_factory import make_srpm
from tests.e2e.conftest import finished_build, wait_for
from tests.e2e.test_pipeline import install_from_served_repo, submit_upload
from tests.e2e.test_ssh_builders import build_started, live_log, rpm_task
from tests.e2e.test_worker_crash import start_worker_process

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]
MACHINE_SCRIPT = [sys.executable, "-m", "tests.builders.netns_machine"]


@pytest.fixture
def machines(tmp_path):
    """Where the test `new` keeps its machines, and the log of every new and delete."""
    directory = tmp_path / "machines"
    directory.mkdir()
    yield directory, tmp_path / "machines.log"
    for leftover in directory.iterdir():  # a failed test must not leave namespaces behind
        subprocess.run(
            [*MACHINE_SCRIPT, "delete"],
            cwd=ROOT,
            env={
                "COPRSITE_MACHINE_NAME": leftover.name,
                "TEST_MACHINES_DIR": str(directory),
                "TEST_MACHINES_LOG": str(tmp_path / "cleanup.log"),
                "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            },
            check=False,
        )


def only_command_pool(machines, *, slots: int = 2, **env) -> BuilderPool:
    """A command pool of netns machines; the local pool is off so nothing builds here."""
    directory, log = machines
    local_pool_ensure()
    BuilderPool.objects.filter(kind=PoolKind.LOCAL).update(enabled=False)
    pool = BuilderPool.objects.create(
        name="cloud",
        kind=PoolKind.COMMAND,
        arches=["x86_64"],
        max_builders=slots,
        config={
            "new": [*MACHINE_SCRIPT, "new"],
            "delete": [*MACHINE_SCRIPT, "delete"],
            "env": {
                "PYTHONPATH": str(ROOT),
                "TEST_MACHINES_DIR": str(directory),
                "TEST_MACHINES_LOG": str(log),
                **env,
            },
        },
    )
    machine_pool_sync(pool=pool)
    return pool


def calls(log: Path) -> dict[str, list[str]]:
    """The machines each command was called for, in order, and the namespaces made."""
    made: dict[str, list[str]] = {"new": [], "delete": [], "netns": []}
    for line in log.read_text().splitlines() if log.exists() else []:
        action, name, *details = line.split()
        made[action].append(details[0] if action == "netns" else name)
    return made


def namespaces() -> set[str]:
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in listing.splitlines() if line.strip()}


def test_a_build_runs_on_a_fresh_machine_that_is_deleted_afterwards(
    live_server, worker, packager, tmp_path, machines
):
    only_command_pool(machines)
    _, token, _ = packager
    srpm = make_srpm(tmp_path, name="hello", auto_req_prov=False)

    build = finished_build(submit_upload(live_server, token, srpm, chroots=["fedora-43-x86_64"]))

    assert build.state == State.SUCCEEDED, list(build.tasks.values("state", "state_reason"))
    made = calls(machines[1])
    assert len(made["new"]) == 1 and made["delete"] == made["new"]
    assert f"Builder host {made['new'][0]}" in live_log(rpm_task(build.pk))
    assert not Machine.objects.exists()
    assert len(made["netns"]) == 1 and not set(made["netns"]) & namespaces()
    result, _ = install_from_served_repo(live_server, tmp_path, "hello")  # gpgcheck=1
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_machine_lost_mid_build_is_replaced_and_the_pool_stays_up(
    live_server, worker, packager, tmp_path, machines
):
    pool = only_command_pool(machines, slots=1)
    _, token, _ = packager
    srpm = make_srpm(
        tmp_path, name="slow", build_script="echo BUILD-STARTED; sleep 10; gcc -o slow hello.c"
    )
    build_id = submit_upload(live_server, token, srpm, chroots=["fedora-43-x86_64"])
    wait_for(lambda: build_started(build_id), what="the build to start")
    (first,) = calls(machines[1])["new"]

    pull_the_plug(machines[0] / first)

    build = finished_build(build_id)
    assert build.state == State.SUCCEEDED, list(build.tasks.values("state", "state_reason"))
    assert rpm_task(build_id).attempt == 1
    made = calls(machines[1])
    assert len(made["new"]) == 2 and sorted(made["delete"]) == sorted(made["new"])
    assert pool.builders.get().state == BuilderState.READY  # one machine, not the pool


def pull_the_plug(directory: Path) -> None:
    """Kill every process of a netns machine, sshd and the build with it."""
    namespace = (directory / "namespace").read_text()
    pids = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True)
    for pid in pids.stdout.split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


def test_cancel_deletes_the_machine_with_the_build_in_it(
    live_server, worker, packager, tmp_path, machines
):
    only_command_pool(machines)
    user, token, _ = packager
    srpm = make_srpm(tmp_path, name="sleepy", build_script="echo BUILD-STARTED; sleep 600")
    build_id = submit_upload(live_server, token, srpm, chroots=["fedora-43-x86_64"])
    wait_for(lambda: build_started(build_id), what="the build to start")

    build_cancel(user=user, build=Build.objects.get(pk=build_id))

    wait_for(lambda: rpm_task(build_id).state == State.CANCELED, timeout=30, what="cancel")
    wait_for(lambda: not Machine.objects.exists(), timeout=30, what="the machine to go")
    made = calls(machines[1])
    assert made["delete"] == made["new"] and len(made["new"]) == 1
    assert not any(machines[0].iterdir())


def test_a_pool_whose_new_fails_is_down_and_its_task_waits_until_it_works_again(
    live_server, worker, packager, tmp_path, machines
):
    pool = only_command_pool(machines, TEST_MACHINES_FAIL="new")
    _, token, _ = packager
    build_id = submit_upload(live_server, token, make_srpm(tmp_path), chroots=["fedora-43-x86_64"])
    builder = pool.builders.get()

    wait_for(
        lambda: Builder.objects.filter(pk=builder.pk, state=BuilderState.DOWN).exists(),
        what="the pool's builder to be down",
    )
    builder.refresh_from_db()
    assert "could not make a machine: `new` exited with status 1" in builder.state_reason
    assert "quota exceeded: no machine for you" in builder.state_reason
    task = rpm_task(build_id)
    assert task.state == State.PENDING and task.attempt == 0  # the build never ran
    assert task.state_reason.startswith("waiting: pool cloud could not make a machine")
    # `delete` ran for the `new` that failed: a half-made machine is not left to bill.
    made = calls(machines[1])
    assert made["delete"] == made["new"] and len(made["new"]) == 1

    # The operator fixes the pool; the next probe brings it back and the build runs.
    del pool.config["env"]["TEST_MACHINES_FAIL"]
    pool.save()
    assert builder_probe(builder)
    schedule_tasks.send()

    build = finished_build(build_id)
    assert build.state == State.SUCCEEDED, list(build.tasks.values("state", "state_reason"))
    assert rpm_task(build_id).attempt == 0
    made = calls(machines[1])
    assert made["delete"] == made["new"] and len(made["new"]) == 3  # failed, probe, build


def test_reconcile_deletes_the_machine_of_a_killed_worker(
    e2e_settings, packager, tmp_path, machines, settings
):
    settings.TASK_LEASE_SECONDS = 0
    only_command_pool(machines)
    directory, log = machines
    user, token, project = packager
    task = rpm_task_waiting(user, project, tmp_path)
    assert schedule_pending_tasks() == [task.pk]
    worker = start_worker_process(task.pk, settings)
    try:
        wait_for(lambda: build_started(task.build_id), timeout=120, what="the build to start")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    (machine,) = Machine.objects.all()
    assert calls(log)["delete"] == []  # the worker died before it could delete it

    reconcile_all()  # the task goes back to the queue, attempt 1
    # A minute later (the grace period that lets a live worker delete its own machine):
    Machine.objects.update(updated_on=timezone.now() - timedelta(seconds=RECONCILE_GRACE_SECONDS))
    sent = reconcile_machines_now()

    assert sent == [machine.pk]
    assert calls(log)["delete"] == [machine.name]
    assert not Machine.objects.exists() and not any(directory.iterdir())
    task.refresh_from_db()
    assert task.state == State.PENDING and task.attempt == 1


def rpm_task_waiting(user, project, tmp_path) -> BuildTask:
    """A build whose RPM task waits for a builder (its source task already done)."""
    srpm = make_srpm(tmp_path, name="sleeper", build_script="echo BUILD-STARTED; sleep 555")
    build = build_submit(
        user=user,
        project=project,
        source_type="upload",
        source_json={},
        upload=SimpleUploadedFile(srpm.name, srpm.read_bytes(), "application/x-rpm"),
        options=BuildOptions(chroots=["fedora-43-x86_64"]),
    )
    source = BuildTask.objects.get(build=build, chroot__isnull=True)
    execution.task_run(task_id=source.pk)
    return BuildTask.objects.get(build=build, chroot__isnull=False)


def reconcile_machines_now() -> list[int]:
    """machines_reconcile as the reconcile tick runs it, with the delete actor run inline."""
    claimed = machines_reconcile(live=live_task_attempts())
    for machine_id in claimed:
        assert machine_delete_leaked(machine_id)
    return claimed
