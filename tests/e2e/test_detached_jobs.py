"""A job on an SSH builder, or on a command pool's machine, outlives its connection and its
worker: the worker reconnects after a cut link, another worker reattaches to it by its job id
when the first dies; both resume the live log where it stopped, and the build is neither lost
nor run twice."""

import signal
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.builds import execution
from apps.builds.logs import read_log, task_result_dir
from apps.builds.models import BuildTask, State, TaskAttempt
from apps.builds.scheduler import schedule_pending_tasks
from apps.builds.services import BuildOptions, build_submit
from apps.fleet.models import Machine, MachineState
from apps.workflows.reconcile import reconcile_all
from tests.builders.test_ssh_transport import ticking_srpm
from tests.e2e.conftest import wait_for
from tests.e2e.test_command_pools import (
    calls,
    machines,  # noqa: F401 - the fixture
    only_command_pool,
    reconcile_machines_now,
)
from tests.e2e.test_ssh_builders import only_ssh_pool
from tests.e2e.test_worker_crash import start_worker_process
from tests.factories import ProjectFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
TICKS = 30


def live_log(task: BuildTask) -> str:
    try:
        return read_log(task_result_dir(task), "builder-live.log")
    except OSError:
        return ""


def scheduled_ticking_build(tmp_path, settings, ticks: int) -> BuildTask:
    """A build whose RPM task prints tick-1 .. tick-<ticks> a second apart, its source task
    done and the RPM task handed to the only builder: the one SSH host."""
    settings.SUBMIT_CHECK_URLS = False
    user = UserFactory(username="detached")
    project = ProjectFactory(owner_user=user, name="detached")
    srpm = ticking_srpm(tmp_path, ticks=ticks)
    upload = SimpleUploadedFile(srpm.name, srpm.read_bytes(), "application/x-rpm")
    build = build_submit(
        user=user, project=project, source_type="upload", source_json={}, upload=upload,
        options=BuildOptions(),
    )  # fmt: skip
    source_task = BuildTask.objects.get(build=build, chroot__isnull=True, state=State.STARTING)
    execution.task_run(task_id=source_task.pk)
    task = BuildTask.objects.get(build=build, chroot__isnull=False)
    assert schedule_pending_tasks() == [task.pk]
    return task


def assert_built_once(task: BuildTask, ticks: int) -> str:
    """One attempt, its packages built, the job's whole log once and in order."""
    task.refresh_from_db()
    assert task.attempt == 0 and task.built_packages, (task.state, task.state_reason)
    assert any(name.endswith(".x86_64.rpm") for name in task.result_files), task.result_files
    assert TaskAttempt.objects.filter(task=task).count() == 1
    assert task.remote_job == ""  # collected: nothing left on the builder to reattach to
    log = live_log(task)
    assert log.splitlines().count("BUILD-STARTED") == 1
    assert log.count(f"INFO: Task {task.task_id}") == 1
    lines = [line for line in log.splitlines() if line.startswith("tick-")]
    assert lines == [f"tick-{i}" for i in range(1, ticks + 1)]
    return log


def test_a_link_cut_for_a_minute_mid_build_costs_no_attempt(
    e2e_settings, tmp_path, settings, ssh_hosts
):
    (host,) = ssh_hosts(1)
    (builder,) = only_ssh_pool([host])
    task = scheduled_ticking_build(tmp_path, settings, ticks=90)
    worker = start_worker_process(task.pk, settings, env={"BUILDER_RECONNECT_SECONDS": "120"})
    try:
        wait_for(lambda: "tick-3\n" in live_log(task), timeout=120, what="the build to tick")
        host.cut_link()
        time.sleep(62)
        assert worker.poll() is None  # still waiting for the host, its task still running
        assert BuildTask.objects.filter(pk=task.pk, state=State.RUNNING).exists()
        host.restore_link()
        assert worker.wait(timeout=150) == 0
    finally:
        host.restore_link()
        worker.kill()
        worker.wait()

    log = assert_built_once(task, 90)
    assert "Connection to ssh-host0 lost; the job runs on there" in log
    assert task.builder_id is None and task.attempts.get().builder_id == builder.pk


def test_a_worker_killed_mid_build_is_replaced_by_one_that_reattaches_to_its_job(
    e2e_settings, tmp_path, settings, ssh_hosts
):
    settings.TASK_LEASE_SECONDS = 0  # the killed worker's lease is up at once
    (host,) = ssh_hosts(1)
    (builder,) = only_ssh_pool([host])
    task = scheduled_ticking_build(tmp_path, settings, ticks=TICKS)

    worker = start_worker_process(task.pk, settings)
    try:
        wait_for(
            lambda: "tick-3\n" in live_log(task),
            timeout=120,
            what="the build to tick on the builder",
        )
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    task.refresh_from_db()
    assert (task.state, task.remote_job, task.builder_id) == (
        State.RUNNING, task.task_id, builder.pk,
    )  # fmt: skip

    assert reconcile_all()["reattached"] == 1
    task.refresh_from_db()
    assert (task.state, task.attempt, task.builder_id) == (State.STARTING, 0, builder.pk)
    execution.task_run(task_id=task.pk)  # another worker: this process

    log = assert_built_once(task, TICKS)
    assert f"Reattached to job {task.task_id} on ssh-host0" in log
    assert list((host.work_dir / "jobs").iterdir()) == []


def test_a_killed_worker_leaves_its_job_and_machine_to_the_worker_that_reattaches(
    e2e_settings,
    tmp_path,
    settings,
    machines,  # noqa: F811 - the fixture imported above
):
    settings.TASK_LEASE_SECONDS = 0  # the killed worker's lease is up at once
    only_command_pool(machines)
    task = scheduled_ticking_build(tmp_path, settings, ticks=TICKS)

    worker = start_worker_process(task.pk, settings)
    try:
        wait_for(lambda: "tick-3\n" in live_log(task), timeout=120, what="the build to tick")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    (machine,) = Machine.objects.all()
    assert (machine.task_id, machine.attempt, machine.state) == (task.pk, 0, MachineState.RUNNING)

    assert reconcile_all()["reattached"] == 1
    assert reconcile_machines_now() == []  # its task attempt runs on: the machine stays
    execution.task_run(task_id=task.pk)  # another worker: this process

    log = assert_built_once(task, TICKS)
    assert f"Reattached to job {task.task_id} on " in log
    _, log_file = machines
    assert calls(log_file)["new"] == calls(log_file)["delete"] == [machine.name]
    assert not Machine.objects.exists()
