"""A job on an SSH builder outlives its worker: another worker reattaches to it by its job id
and resumes its live log where it stopped; the build is neither lost nor run twice.

The link-cut half (a builder's link down for 62 s mid-build) is in
tests/builders/test_ssh_transport.py, against the transport itself."""

import signal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.builds import execution
from apps.builds.logs import read_log, task_result_dir
from apps.builds.models import BuildTask, State, TaskAttempt
from apps.builds.scheduler import schedule_pending_tasks
from apps.builds.services import BuildOptions, build_submit
from apps.workflows.reconcile import reconcile_all
from tests.builders.test_ssh_transport import ticking_srpm
from tests.e2e.conftest import wait_for
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


def test_a_worker_killed_mid_build_is_replaced_by_one_that_reattaches_to_its_job(
    e2e_settings, tmp_path, settings, ssh_hosts
):
    settings.TASK_LEASE_SECONDS = 0  # the killed worker's lease is up at once
    settings.SUBMIT_CHECK_URLS = False
    (host,) = ssh_hosts(1)
    (builder,) = only_ssh_pool([host])
    user = UserFactory(username="detached")
    project = ProjectFactory(owner_user=user, name="detached")
    srpm = ticking_srpm(tmp_path, ticks=TICKS)
    upload = SimpleUploadedFile(srpm.name, srpm.read_bytes(), "application/x-rpm")
    build = build_submit(
        user=user, project=project, source_type="upload", source_json={}, upload=upload,
        options=BuildOptions(),
    )  # fmt: skip
    source_task = BuildTask.objects.get(build=build, chroot__isnull=True, state=State.STARTING)
    execution.task_run(task_id=source_task.pk)
    task = BuildTask.objects.get(build=build, chroot__isnull=False)
    assert schedule_pending_tasks() == [task.pk]

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

    task.refresh_from_db()
    assert task.attempt == 0 and task.built_packages, (task.state, task.state_reason)
    assert any(name.endswith(".x86_64.rpm") for name in task.result_files), task.result_files
    assert TaskAttempt.objects.filter(task=task).count() == 1
    log = live_log(task)
    assert f"Reattached to job {task.task_id} on ssh-host0" in log
    assert (
        log.splitlines().count("BUILD-STARTED") == 1
        and log.count(f"INFO: Task {task.task_id}") == 1
    )
    ticks = [line for line in log.splitlines() if line.startswith("tick-")]
    assert ticks == [f"tick-{i}" for i in range(1, TICKS + 1)]
    assert list((host.work_dir / "jobs").iterdir()) == []
