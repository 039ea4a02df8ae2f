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
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.builds import execution
from apps.builds.actors import schedule_tasks
from apps.builds.models import Build, BuildTask, State, TaskAttempt
from apps.builds.scheduler import schedule_pending_tasks
from apps.builds.services import (
    BuildOptions,
    build_cancel,
    build_submit,
    live_task_attempts,
)
from apps.fleet.health import builder_probe
from apps.fleet.machines import RECONCILE_GRACE_SECONDS, machine_delete_leaked, machines_reconcile
from apps.fleet.models import Builder, BuilderPool, BuilderState, Machine, MachineState, PoolKind
from apps.fleet.services import local_pool_ensure, machine_pool_sync
from apps.workflows.reconcile import reconcile_all
from tests.builders.srpm_factory import make_srpm
from tests.e2e.conftest import finished_build, wait_for
from tests.e2e.test_pipeline import install_from_served_repo, submit_upload
from tests.e2e.test_ssh_builders import build_started, live_log, rpm_task
from tests.e2e.test_worker_crash import start_worker_process
from tests.factories import ProjectFactory, UserFactory

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


def test_reconcile_deletes_a_killed_workers_machine_once_nobody_follows_its_job(
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
    # Its job runs on: the task goes to another worker, which would reattach to it there.
    assert reconcile_all()["reattached"] == 1
    # Canceled before any worker took it up: nobody will follow the job or delete its machine.
    build_cancel(user=user, build=task.build)

    # A minute later (the grace period that lets a live worker delete its own machine):
    Machine.objects.update(updated_on=timezone.now() - timedelta(seconds=RECONCILE_GRACE_SECONDS))
    sent = reconcile_machines_now()

    assert sent == [machine.pk]
    assert calls(log)["delete"] == [machine.name]
    assert not Machine.objects.exists() and not any(directory.iterdir())
    task.refresh_from_db()
    assert task.state == State.CANCELED and task.attempt == 0


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


# --- the machine lifecycle, as resalloc's: made ahead, reused for one owner's project -----


def submit(user, project, directory, *, name: str = "hello", script: str | None = None) -> Build:
    """A build of a trivial SRPM for fedora-43-x86_64 (its upload's source task needs no
    builder: only the RPM task takes a machine)."""
    directory.mkdir(parents=True, exist_ok=True)
    options = {"build_script": script} if script else {}
    srpm = make_srpm(directory, name=name, auto_req_prov=False, **options)
    return build_submit(
        user=user,
        project=project,
        source_type="upload",
        source_json={},
        upload=SimpleUploadedFile(srpm.name, srpm.read_bytes(), "application/x-rpm"),
        options=BuildOptions(chroots=["fedora-43-x86_64"]),
    )


def rpm_attempt(build: Build) -> TaskAttempt:
    (attempt,) = TaskAttempt.objects.filter(task__build=build, task__chroot__isnull=False)
    return attempt


def machine_used(build: Build) -> str:
    return rpm_attempt(build).machine_name


def ready_machines() -> set[str]:
    return set(Machine.objects.filter(state=MachineState.READY).values_list("name", flat=True))


def test_machines_made_ahead_are_ready_before_any_task_and_taken_at_once(
    worker, packager, tmp_path, machines
):
    pool = only_command_pool(machines, slots=2)
    # Three asked for, two allowed: never more machines than max_builders.
    BuilderPool.objects.filter(pk=pool.pk).update(min_ready=3)
    user, _, project = packager

    reconcile_all()
    ready = wait_for(lambda: ready_machines() if len(ready_machines()) == 2 else None)
    reconcile_all()  # topped up already: nothing more to make
    assert Machine.objects.count() == 2 and len(calls(machines[1])["new"]) == 2

    build = finished_build(submit(user, project, tmp_path / "a").pk)

    assert build.state == State.SUCCEEDED, list(build.tasks.values("state", "state_reason"))
    attempt = rpm_attempt(build)
    assert attempt.machine_name in ready and attempt.machine_wait_seconds < 1.0
    # reuse_builds 1: the machine ran one build and is gone; reconcile makes another.
    assert not Machine.objects.filter(name=attempt.machine_name).exists()
    assert attempt.machine_name in calls(machines[1])["delete"]
    reconcile_all()
    wait_for(lambda: len(ready_machines()) == 2, what="the pool's ready machines again")
    assert len(ready_machines() - ready) == 1
    staff = UserFactory(username="operator", is_staff=True)
    client = Client()
    client.force_login(staff)
    page = client.get(reverse("build-detail", args=[build.pk]))
    assert b"machine in 0." in page.content, page.content.decode()


def test_a_machine_runs_the_next_builds_of_its_owner_and_project_only_up_to_reuse_builds(
    worker, packager, tmp_path, machines
):
    pool = only_command_pool(machines, slots=2)
    BuilderPool.objects.filter(pk=pool.pk).update(reuse_builds=2)
    user, _, project = packager
    other = UserFactory(username="other")
    others_project = ProjectFactory(
        owner_user=other, name="tools", chroot_names=["fedora-43-x86_64"]
    )

    first = finished_build(submit(user, project, tmp_path / "a1").pk)
    machine = machine_used(first)
    kept = Machine.objects.get(name=machine)
    assert (kept.state, kept.owner_key, kept.builds) == (MachineState.READY, "packager/tools", 1)
    second = finished_build(submit(user, project, tmp_path / "a2").pk)
    third = finished_build(submit(user, project, tmp_path / "a3").pk)

    assert first.state == second.state == third.state == State.SUCCEEDED
    # Two builds on one machine, which the second one's waited no time for; then it is
    # deleted (reuse_builds 2) and the third build gets a new one.
    assert machine_used(second) == machine and rpm_attempt(second).machine_wait_seconds < 1.0
    assert machine_used(third) != machine
    assert not Machine.objects.filter(name=machine).exists()
    assert machine in calls(machines[1])["delete"]
    assert Machine.objects.get(name=machine_used(third)).owner_key == "packager/tools"

    # Another owner's project of the same name never gets the packager's machines.
    theirs = finished_build(submit(other, others_project, tmp_path / "b").pk)
    assert theirs.state == State.SUCCEEDED
    assert machine_used(theirs) not in {machine, machine_used(third)}
    assert Machine.objects.get(name=machine_used(theirs)).owner_key == "other/tools"
    assert Machine.objects.get(name=machine_used(third)).state == MachineState.READY


def test_a_failed_build_ends_its_machines_reuse(worker, packager, tmp_path, machines):
    pool = only_command_pool(machines, slots=1)
    BuilderPool.objects.filter(pk=pool.pk).update(reuse_builds=10)
    user, _, project = packager

    built = finished_build(submit(user, project, tmp_path / "ok").pk)
    failed = finished_build(submit(user, project, tmp_path / "f", script="exit 1").pk)

    assert (built.state, failed.state) == (State.SUCCEEDED, State.FAILED)
    machine = machine_used(built)
    assert machine_used(failed) == machine  # kept after the good build
    assert not Machine.objects.exists()  # the failed build: deleted, not kept
    assert calls(machines[1])["delete"] == [machine]


def test_a_project_that_asks_for_a_tag_builds_only_on_the_pool_with_it(
    worker, packager, tmp_path, machines
):
    plain = only_command_pool(machines, slots=2)
    tagged = BuilderPool.objects.create(
        name="cloud-b",
        kind=PoolKind.COMMAND,
        arches=["x86_64"],
        max_builders=1,
        tags=["cloud_b"],
        config=plain.config,
    )
    machine_pool_sync(pool=tagged)
    user, _, project = packager
    project.builder_tags = ["arch_x86_64", "cloud_b"]
    project.save(update_fields=["builder_tags"])

    builds = [finished_build(submit(user, project, tmp_path / f"t{n}").pk) for n in range(2)]

    assert [build.state for build in builds] == [State.SUCCEEDED] * 2
    assert {rpm_attempt(build).builder_name for build in builds} == {"cloud-b-machines"}
    assert all(name.startswith("cloud-b-") for name in map(machine_used, builds))
