"""Uploads go away: with a build canceled or deleted before its source task ran, with its
project, and by reconcile when the process that should have removed them died."""

import os
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.builds import execution
from apps.builds.lifecycle import task_transition
from apps.builds.models import Build, BuildTask, State
from apps.builds.services import (
    build_cancel,
    build_delete,
    build_submit,
    uploads_reconcile,
)
from apps.builds.sources import UPLOAD_GRACE_SECONDS, upload_dir
from apps.fleet.models import Builder
from apps.fleet.services import local_pool_ensure
from apps.workflows.projects import project_delete
from apps.workflows.reconcile import reconcile_all
from tests.builders.srpm_factory import make_srpm
from tests.factories import BuildFactory, BuildTaskFactory, ProjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def uploads_root(settings, tmp_path):
    settings.UPLOADS_ROOT = tmp_path / "uploads"
    settings.RESULTS_ROOT = tmp_path / "results"
    return settings.UPLOADS_ROOT


@pytest.fixture
def srpm(tmp_path):
    return make_srpm(tmp_path)


def submit_upload(project, srpm) -> Build:
    return build_submit(
        user=project.owner_user, project=project, source_type="upload", source_json={},
        upload=SimpleUploadedFile(srpm.name, srpm.read_bytes(), "application/x-rpm"),
    )  # fmt: skip


def source_task(build: Build) -> BuildTask:
    return BuildTask.objects.get(build=build, chroot=None)


def aged(path, seconds: float) -> None:
    """Make a directory and its files look untouched for `seconds`."""
    past = time.time() - seconds
    for entry in [path, *path.rglob("*")]:
        os.utime(entry, (past, past))


def leftover_upload(build_id: int, age: float = 0):
    directory = upload_dir(build_id)
    directory.mkdir(parents=True)
    (directory / "hello-1.0-1.src.rpm").write_bytes(b"x" * 1000)
    aged(directory, age)
    return directory


@pytest.mark.parametrize("source_state", [State.PENDING, State.STARTING])
def test_cancel_before_the_source_task_ran_removes_the_upload(
    srpm, source_state, django_capture_on_commit_callbacks
):
    project = ProjectFactory()
    with django_capture_on_commit_callbacks(execute=True):
        build = submit_upload(project, srpm)
    BuildTask.objects.filter(pk=source_task(build).pk).update(state=source_state)
    assert (upload_dir(build.pk) / srpm.name).is_file()

    with django_capture_on_commit_callbacks(execute=True):
        build_cancel(user=project.owner_user, build=build)

    assert source_task(build).state == State.CANCELED
    assert not upload_dir(build.pk).exists()


def test_cancel_keeps_the_upload_of_a_running_source_task(srpm, django_capture_on_commit_callbacks):
    """The worker running it still reads it, and removes it when the task ends."""
    project = ProjectFactory()
    build = submit_upload(project, srpm)
    BuildTask.objects.filter(pk=source_task(build).pk).update(state=State.RUNNING)

    with django_capture_on_commit_callbacks(execute=True):
        build_cancel(user=project.owner_user, build=build)

    assert (upload_dir(build.pk) / srpm.name).is_file()


def test_upload_stays_when_the_cancel_rolls_back(srpm, django_capture_on_commit_callbacks):
    project = ProjectFactory()
    build = submit_upload(project, srpm)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        build_cancel(user=project.owner_user, build=build)
    assert callbacks  # the removal waits for the commit
    assert (upload_dir(build.pk) / srpm.name).is_file()


def test_deleting_a_build_or_project_removes_what_its_upload_left(
    django_capture_on_commit_callbacks,
):
    project = ProjectFactory()
    builds = [BuildFactory(project=project, source_type="upload", state=State.CANCELED)]
    builds.append(BuildFactory(project=project, source_type="upload", state=State.FAILED))
    directories = [leftover_upload(build.pk) for build in builds]

    with django_capture_on_commit_callbacks(execute=True):
        build_delete(user=project.owner_user, build=builds[0])
    assert not directories[0].exists() and directories[1].exists()

    with django_capture_on_commit_callbacks(execute=True):
        project_delete(user=project.owner_user, project=project)
    assert not directories[1].exists()


def test_reconcile_removes_old_uploads_nothing_will_read(uploads_root):
    waiting = BuildTaskFactory(chroot=None, state=State.PENDING, build__source_type="upload")
    ended = BuildTaskFactory(chroot=None, state=State.CANCELED, build__source_type="upload")
    kept = {
        "waiting for its source task": leftover_upload(waiting.build_id, 2 * UPLOAD_GRACE_SECONDS),
        "of a build being submitted": leftover_upload(999_999, 60),
        "not one of ours": uploads_root / "operator-notes",
    }
    kept["not one of ours"].mkdir()
    aged(kept["not one of ours"], 2 * UPLOAD_GRACE_SECONDS)
    removed = {
        "source task ended": leftover_upload(ended.build_id, UPLOAD_GRACE_SECONDS + 60),
        "build deleted": leftover_upload(888_888, UPLOAD_GRACE_SECONDS + 60),
        "RPM upload of a dead request": uploads_root / "rpm-k2j3h4",
    }
    removed["RPM upload of a dead request"].mkdir()
    aged(removed["RPM upload of a dead request"], UPLOAD_GRACE_SECONDS + 60)

    assert uploads_reconcile() == len(removed)

    assert [why for why, path in removed.items() if path.exists()] == []
    assert [why for why, path in kept.items() if not path.exists()] == []


def test_periodic_reconcile_sweeps_uploads(broker):
    leftover = leftover_upload(777_777, UPLOAD_GRACE_SECONDS + 60)
    reconcile_all()
    assert not leftover.exists()


@pytest.fixture
def no_free_slot():
    Builder.objects.filter(pk=local_pool_ensure().pk).update(slots=0)


@pytest.mark.django_db(transaction=True)
def test_source_task_keeps_the_upload_for_its_next_attempt(srpm, no_free_slot, monkeypatch):
    """A run that reconcile gave up on (its heartbeat was late) and queued again ends
    without removing the upload its next attempt reads; a run that ends the task does."""
    project = ProjectFactory()
    build = submit_upload(project, srpm)
    task = source_task(build)
    real_run = execution.run_on_builder

    def run_then_requeued_meanwhile(task, result_dir):
        result = real_run(task, result_dir)
        task_transition(task.pk, [State.RUNNING], State.PENDING, attempt=task.attempt + 1)
        return result

    monkeypatch.setattr(execution, "run_on_builder", run_then_requeued_meanwhile)
    execution.task_run(task_id=task.pk)
    assert source_task(build).state == State.PENDING
    assert (upload_dir(build.pk) / srpm.name).is_file()

    monkeypatch.setattr(execution, "run_on_builder", real_run)
    BuildTask.objects.filter(pk=task.pk).update(state=State.STARTING)
    execution.task_run(task_id=task.pk)
    assert source_task(build).state == State.SUCCEEDED
    assert not upload_dir(build.pk).exists()
