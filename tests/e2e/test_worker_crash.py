"""A worker SIGKILLed mid-build leaves no build stuck: the task is retried, then failed."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from apps.builds import execution
from apps.builds.models import BuildTask, State
from apps.builds.scheduler import schedule_pending_tasks
from apps.builds.services import BuildOptions, build_submit, tasks_reconcile
from apps.fleet.services import local_pool_ensure
from tests.builders.srpm_factory import make_srpm
from tests.e2e.conftest import wait_for
from tests.factories import ProjectFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]
RUN_ONE_TASK = (
    "import django, sys; django.setup(); "
    "from apps.builds.actors import run_task; run_task(int(sys.argv[1]))"
)


def database_url() -> str:
    """The test database, for a worker process of its own."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def start_worker_process(task_id: int, settings) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "RESULTS_ROOT": str(settings.RESULTS_ROOT),
        "KEYS_ROOT": str(settings.KEYS_ROOT),
        "UPLOADS_ROOT": str(settings.UPLOADS_ROOT),
    }
    env.pop("BROKER_URL", None)  # the worker process only runs this one task
    return subprocess.Popen([sys.executable, "-c", RUN_ONE_TASK, str(task_id)], cwd=ROOT, env=env)


def sandbox_alive() -> bool:
    return bool(subprocess.run(["pgrep", "-f", "sleep 555"], capture_output=True).stdout)


def kill_worker_mid_build(task: BuildTask, settings) -> None:
    assert schedule_pending_tasks() == [task.pk]
    worker = start_worker_process(task.pk, settings)
    try:
        wait_for(
            lambda: (
                BuildTask.objects.filter(pk=task.pk, state=State.RUNNING).exists()
                and sandbox_alive()
            ),
            timeout=60,
            what="the build to run in its sandbox",
        )
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    # bwrap --die-with-parent: the sandbox dies with the worker, nothing keeps building.
    wait_for(lambda: not sandbox_alive(), timeout=10, what="the orphaned sandbox to die")


def test_killed_worker_task_is_retried_then_failed(e2e_settings, tmp_path, settings):
    settings.TASK_LEASE_SECONDS = 0
    settings.MAX_TASK_ATTEMPTS = 2
    settings.SUBMIT_CHECK_URLS = False
    local_pool_ensure()
    user = UserFactory(username="crashy")
    project = ProjectFactory(owner_user=user, name="crash")
    srpm = make_srpm(tmp_path, name="sleeper", build_script="sleep 555; gcc -o sleeper hello.c")
    upload = SimpleUploadedFile(srpm.name, srpm.read_bytes(), "application/x-rpm")
    build = build_submit(
        user=user,
        project=project,
        source_type="upload",
        source_json={},
        upload=upload,
        options=BuildOptions(),
    )
    # An upload's source task needs no builder slot: it is queued as `starting` at once.
    source_task = BuildTask.objects.get(build=build, chroot__isnull=True, state=State.STARTING)
    execution.task_run(task_id=source_task.pk)
    task = BuildTask.objects.get(build=build, chroot__isnull=False)

    kill_worker_mid_build(task, settings)
    tasks_reconcile()
    task.refresh_from_db()
    assert task.state == State.PENDING and task.attempt == 1
    assert "builder lost" in task.state_reason

    kill_worker_mid_build(task, settings)
    tasks_reconcile()
    task.refresh_from_db()
    assert task.state == State.FAILED
    assert task.state_reason.startswith("builder lost")
    build.refresh_from_db()
    assert build.state == State.FAILED and build.ended_on is not None
