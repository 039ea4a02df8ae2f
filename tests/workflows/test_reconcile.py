"""Reconcile: tasks of dead workers go back to the queue; built-but-unsigned ones get signed."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.builds.lifecycle import task_attempt_start
from apps.builds.models import BuildTask, State
from apps.fleet.services import local_pool_ensure
from apps.workflows.reconcile import reconcile_all
from tests.factories import BuildTaskFactory
from tests.queues import queued_actor_names

pytestmark = pytest.mark.django_db


def stale_running_task(**fields) -> BuildTask:
    return BuildTaskFactory(
        state=State.RUNNING,
        heartbeat_on=timezone.now() - timedelta(hours=1),
        **fields,
    )


def test_unsigned_task_is_signed_not_rebuilt(stub_broker, django_capture_on_commit_callbacks):
    task = stale_running_task(builder=None, result_files=["hello-1.0-1.fc43.x86_64.rpm"])
    # The test's transaction stands in for none: reconcile's nudges go through the outbox.
    with django_capture_on_commit_callbacks(execute=True):
        reconcile_all()
    task.refresh_from_db()
    assert task.state == State.RUNNING and task.attempt == 0
    assert "publish_task" in queued_actor_names(stub_broker, "sign")


def test_task_of_dead_worker_is_queued_again(broker, settings):
    settings.MAX_TASK_ATTEMPTS = 2
    task = stale_running_task(builder=local_pool_ensure())
    task_attempt_start(task=task)
    reconcile_all()
    task.refresh_from_db()
    assert task.state == State.PENDING and task.attempt == 1 and task.builder is None
    assert "builder lost" in task.state_reason
    # The attempt the dead worker ran is over, its builder remembered.
    attempt = task.attempts.get()
    assert (attempt.builder_name, attempt.outcome) == (
        local_pool_ensure().name,
        "builder lost: its worker stopped reporting",
    )
    assert attempt.ended_on is not None


def test_task_of_dead_worker_with_a_detached_job_is_handed_on_not_run_again(broker):
    builder = local_pool_ensure()
    task = stale_running_task(builder=builder, remote_job="7-fedora", lease_token="dead")
    task_attempt_start(task=task)
    assert reconcile_all()["reattached"] == 1
    task.refresh_from_db()
    # The same attempt on the same builder, for the worker that reattaches to its job.
    assert (task.state, task.attempt, task.builder, task.remote_job) == (
        State.STARTING, 0, builder, "7-fedora",
    )  # fmt: skip
    assert task.lease_token == "" and "reattaches to job 7-fedora" in task.state_reason
    assert task.attempts.get().ended_on is None


def test_fresh_heartbeat_is_left_alone(broker):
    task = BuildTaskFactory(
        state=State.RUNNING, heartbeat_on=timezone.now(), builder=local_pool_ensure()
    )
    reconcile_all()
    task.refresh_from_db()
    assert task.state == State.RUNNING and task.attempt == 0


def test_task_failed_for_good_has_its_logs_compressed(broker, settings, tmp_path):
    settings.RESULTS_ROOT = str(tmp_path)
    settings.MAX_TASK_ATTEMPTS = 1
    task = stale_running_task(
        builder=local_pool_ensure(), result_dir="fedora-43-x86_64/00000001-hello"
    )
    task_dir = tmp_path / task.build.project.ownername / task.build.project_dirname
    task_dir = task_dir / task.result_dir
    task_dir.mkdir(parents=True)
    (task_dir / "builder-live.log").write_text("INFO: building\n")
    reconcile_all()
    task.refresh_from_db()
    assert task.state == State.FAILED
    assert sorted(path.name for path in task_dir.iterdir()) == ["builder-live.log.gz"]
