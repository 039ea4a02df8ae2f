"""A worker SIGKILLed mid-build or mid-createrepo leaves nothing stuck: work is taken over."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import dramatiq
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, connections

from apps.builds import execution
from apps.builds.models import BuildTask, State
from apps.builds.scheduler import schedule_pending_tasks
from apps.builds.services import BuildOptions, build_submit
from apps.builds.workspaces import workspaces_root
from apps.fleet.services import local_pool_ensure
from apps.repos import gpg
from apps.repos.models import Repository
from apps.repos.services import project_key_ensure, project_publish, repository_regenerate
from apps.workflows.reconcile import reconcile_all
from tests.builders.srpm_factory import make_srpm
from tests.e2e.conftest import wait_for
from tests.factories import ProjectFactory, UserFactory
from tests.repos.rpm_helpers import build_rpm
from tests.repos.test_publish import built_task, task_dir

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


def start_worker_process(
    task_id: int, settings, *, code: str = RUN_ONE_TASK, env: dict | None = None
) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "RESULTS_ROOT": str(settings.RESULTS_ROOT),
        "KEYS_ROOT": str(settings.KEYS_ROOT),
        "UPLOADS_ROOT": str(settings.UPLOADS_ROOT),
        "WORKSPACES_ROOT": str(settings.WORKSPACES_ROOT),
        **(env or {}),
    }
    env.pop("BROKER_URL", None)  # the worker process only runs this one actor
    return subprocess.Popen([sys.executable, "-c", code, str(task_id)], cwd=ROOT, env=env)


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


def workspaces_left() -> list[Path]:
    return sorted(workspaces_root().glob("coprsite-build-*"))


def test_killed_worker_task_is_retried_then_failed(e2e_settings, tmp_path, settings):
    settings.WORKSPACES_ROOT = tmp_path / "workspaces"
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
    assert [path.name.split("-")[2] for path in workspaces_left()] == [f"task{task.pk}.0"]
    reconcile_all()
    assert workspaces_left() == []  # swept: the task's attempt 0 no longer runs
    task.refresh_from_db()
    assert task.state == State.PENDING and task.attempt == 1
    assert "builder lost" in task.state_reason

    kill_worker_mid_build(task, settings)
    reconcile_all()
    assert workspaces_left() == []
    task.refresh_from_db()
    assert task.state == State.FAILED
    assert task.state_reason.startswith("builder lost")
    build.refresh_from_db()
    assert build.state == State.FAILED and build.ended_on is not None


REGENERATE_ONE_REPOSITORY = (
    "import django, sys; django.setup(); "
    "from apps.repos.actors import regenerate_repository; regenerate_repository(int(sys.argv[1]))"
)
# Stands in for createrepo_c on a chroot large enough to take minutes: it says it started,
# waits, and then runs the real tool (so a run that is not killed still publishes).
SLOW_CREATEREPO = """#!/bin/sh
echo $$ > {started}
for i in $(seq 600); do sleep 0.1; done
exec {real} "$@"
"""


def slow_createrepo_on_path(directory: Path) -> tuple[str, Path]:
    """A PATH whose createrepo_c is slow, and the file where it writes its pid."""
    directory.mkdir()
    started = directory / "started"
    wrapper = directory / "createrepo_c"
    real = shutil.which("createrepo_c")
    wrapper.write_text(SLOW_CREATEREPO.format(started=started, real=real))
    wrapper.chmod(0o755)
    return f"{directory}:{os.environ['PATH']}", started


def dnf_lists(repository_dir: Path, cache: Path) -> list[str]:
    """name-version of every package dnf finds in the repository's metadata."""
    listed = subprocess.run(
        ["dnf", "-q", f"--installroot={cache}", "--releasever=43",
         f"--repofrompath=crash,{repository_dir.as_uri()}", "--repo=crash",
         "repoquery", "--qf", "%{name}-%{version}"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return listed.stdout.split()


@pytest.fixture
def idle_worker(e2e_settings, transactional_db, dramatiq_worker):
    """The in-process worker, started by the test when it may take messages."""
    broker = dramatiq.get_broker()
    broker.flush_all()
    yield dramatiq_worker
    dramatiq_worker.pause()
    broker.flush_all()
    connections.close_all()


def test_repository_of_a_worker_killed_mid_createrepo_is_published_again(
    idle_worker, settings, tmp_path
):
    settings.REPOSITORY_LEASE_SECONDS = 3
    settings.KEYS_ROOT = tmp_path / "keys"
    project = ProjectFactory()
    project_key_ensure(project=project)
    earlier = built_task(project, build_rpm(tmp_path / "v1", version="1.0")[0])
    project_publish(project=project)
    repository = Repository.objects.get(project=project)
    repository_regenerate(repository_id=repository.pk)
    earlier.refresh_from_db()
    assert earlier.state == State.SUCCEEDED
    later = built_task(project, build_rpm(tmp_path / "v2", version="2.0")[0])
    project_publish(project=project)

    path, started = slow_createrepo_on_path(tmp_path / "slow-bin")
    lease = {"PATH": path, "REPOSITORY_LEASE_SECONDS": "3"}
    crashing = start_worker_process(
        repository.pk, settings, code=REGENERATE_ONE_REPOSITORY, env=lease
    )
    try:
        wait_for(started.exists, timeout=60, what="createrepo_c to start in the worker")
        wait_for(started.read_text, timeout=5, what="createrepo_c to say its pid")
    finally:
        crashing.send_signal(signal.SIGKILL)
        crashing.wait()
    createrepo_pid = int(started.read_text())
    idle_worker.resume()  # the surviving workers

    def later_published() -> bool:
        reconcile_all()  # what the reconcile tick of every worker does
        later.refresh_from_db()
        return later.state == State.SUCCEEDED

    try:
        # createrepo_c dies with its worker: no late run can swap in stale metadata.
        wait_for(lambda: not gpg.process_alive(createrepo_pid), timeout=10, what="its death")
        # The lease runs out, the next reconcile tick hands the repository on, a run takes
        # some seconds: well within the window in which a lost build task is taken over.
        window = settings.REPOSITORY_LEASE_SECONDS + settings.RECONCILE_SECONDS + 20
        assert window < settings.TASK_LEASE_SECONDS + settings.RECONCILE_SECONDS
        wait_for(
            later_published, timeout=window, interval=settings.RECONCILE_SECONDS, what="the build"
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(createrepo_pid, signal.SIGKILL)
    chroot_dir = task_dir(project, later).parent
    assert sorted(dnf_lists(chroot_dir, tmp_path / "dnf")) == ["hello-1.0", "hello-2.0"]
