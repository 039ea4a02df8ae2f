"""Publishing built tasks: signing with the real rpmsign, then coalesced createrepo_c runs."""

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import django.conf
import dramatiq
import pytest
from django.utils import timezone

from apps.builds.models import BuildTask, State
from apps.builds.services import build_delete
from apps.repos import actors, gpg, services
from apps.repos.models import Repository
from apps.repos.services import (
    RUN_SPACING_SECONDS,
    RepositoryLease,
    project_key_ensure,
    project_publish,
    repository_regenerate,
)
from apps.workflows.projects import project_delete
from tests.factories import BuildFactory, BuildTaskFactory, ProjectFactory, chroot
from tests.queues import queued_actor_names
from tests.repos.rpm_helpers import build_rpm, import_public_key, rpm_checksig

pytestmark = pytest.mark.django_db(transaction=True)
CHROOT = "fedora-43-x86_64"


@pytest.fixture
def project(settings, tmp_path):
    settings.KEYS_ROOT = tmp_path / "keys"
    settings.RESULTS_ROOT = tmp_path / "results"
    project = ProjectFactory()
    project_key_ensure(project=project)
    return project


def built_task(project, rpm: Path) -> BuildTask:
    """A task its builder has finished: RPMs in its result dir, waiting for signing."""
    build = BuildFactory(project=project, state=State.RUNNING)
    task = BuildTaskFactory(
        build=build,
        chroot=chroot(CHROOT),
        state=State.RUNNING,
        builder=None,
        result_dir=f"{CHROOT}/{build.pk:08d}-hello",
        result_files=[rpm.name],
    )
    result_dir = task_dir(project, task)
    result_dir.mkdir(parents=True)
    shutil.copy(rpm, result_dir)
    return task


def task_dir(project, task: BuildTask) -> Path:
    results = Path(django.conf.settings.RESULTS_ROOT)
    return results / project.ownername / project.name / task.result_dir


@pytest.fixture
def trusting_rpmdb(project, tmp_path) -> Path:
    pubkey = tmp_path / "pubkey.gpg"
    pubkey.write_text(project.signing_key.public_key)
    dbpath = tmp_path / "rpmdb"
    import_public_key(pubkey, dbpath=dbpath)
    return dbpath


def test_waiting_tasks_are_signed_together_and_queued_once(project, tmp_path, trusting_rpmdb):
    rpm = build_rpm(tmp_path / "rpms")[0]
    tasks = [built_task(project, rpm) for _ in range(3)]

    project_publish(project=project)  # one message; the other tasks' messages find no work

    repository = Repository.objects.get(project=project)
    assert repository.requested_serial == 1
    for task in tasks:
        task.refresh_from_db()
        assert (task.state, task.publish_serial) == (State.RUNNING, 1)
        signed = task_dir(project, task) / rpm.name
        assert rpm_checksig(signed, dbpath=trusting_rpmdb).returncode == 0


def test_one_broken_package_fails_only_its_own_task(project, tmp_path, trusting_rpmdb):
    rpm = build_rpm(tmp_path / "rpms")[0]
    broken = tmp_path / "broken" / "hello-1.0-1.noarch.rpm"
    broken.parent.mkdir()
    broken.write_bytes(b"not an rpm at all")
    good, bad = built_task(project, rpm), built_task(project, broken)

    project_publish(project=project)

    good.refresh_from_db()
    bad.refresh_from_db()
    assert good.publish_serial == 1
    assert rpm_checksig(task_dir(project, good) / rpm.name, dbpath=trusting_rpmdb).returncode == 0
    assert bad.state == State.FAILED
    assert bad.state_reason.startswith("signing failed: rpmsign failed")
    assert not (task_dir(project, bad) / broken.name).exists()


def test_a_publish_that_meets_a_signing_session_leaves_its_task_to_it(project, tmp_path):
    rpm = build_rpm(tmp_path / "rpms")[0]
    task = built_task(project, rpm)
    keys = {"keys_root": Path(django.conf.settings.KEYS_ROOT), "owner": project.ownername}
    with gpg.signing_session(**keys, project=project.name) as other_session:
        assert other_session is not None
        started = time.monotonic()
        project_publish(project=project)  # returns instead of holding a worker thread
        assert time.monotonic() - started < 5
        task.refresh_from_db()
        assert task.awaits_signing
        with gpg.signing_session(**keys, project=project.name, wait=False) as third:
            assert third is None


def test_one_publish_signs_what_is_left_beyond_a_batch(project, tmp_path, monkeypatch):
    monkeypatch.setattr(services, "SIGN_BATCH_MAX", 1)
    rpm = build_rpm(tmp_path / "rpms")[0]
    tasks = [built_task(project, rpm) for _ in range(3)]

    project_publish(project=project)

    for task in tasks:
        task.refresh_from_db()
        assert task.publish_serial is not None and not task.awaits_signing


def test_builds_finishing_in_a_stream_share_a_signing_session(project, tmp_path, stub_broker):
    rpm = build_rpm(tmp_path / "rpms")[0]
    # Another build of the project is still running: more RPMs are on their way.
    BuildTaskFactory(build=BuildFactory(project=project, state=State.RUNNING), state=State.RUNNING)
    first = built_task(project, rpm)
    BuildTask.objects.filter(pk=first.pk).update(heartbeat_on=timezone.now())

    project_publish(project=project, task_id=first.pk)

    first.refresh_from_db()
    assert first.awaits_signing  # held back, not lost: a delayed call is on its way
    assert queued_actor_names(stub_broker, "sign.DQ") == ["publish_project"]
    second = built_task(project, rpm)
    BuildTask.objects.filter(pk=second.pk).update(heartbeat_on=timezone.now())
    project_publish(project=project, task_id=second.pk)
    assert queued_actor_names(stub_broker, "sign.DQ") == ["publish_project"]  # no second one

    # SIGN_SPACING_SECONDS later (the delayed call): one session signs both.
    earlier = timezone.now() - timedelta(seconds=services.SIGN_SPACING_SECONDS)
    BuildTask.objects.filter(pk=first.pk).update(heartbeat_on=earlier)
    project_publish(project=project)
    for task in (first, second):
        task.refresh_from_db()
        assert task.publish_serial == 1


def test_a_lone_build_is_published_at_once_even_right_after_a_run(project, tmp_path):
    rpm = build_rpm(tmp_path / "rpms")[0]
    first, second = built_task(project, rpm), built_task(project, rpm)
    project_publish(project=project)
    # Published one after the other with nothing else on its way: no waiting between runs.
    repository = Repository.objects.get(project=project)
    assert repository_regenerate(repository_id=repository.pk) == 1
    first.refresh_from_db()
    assert first.state == State.SUCCEEDED
    third = built_task(project, rpm)
    project_publish(project=project)
    assert repository_regenerate(repository_id=repository.pk) == 1
    third.refresh_from_db()
    second.refresh_from_db()
    assert third.state == second.state == State.SUCCEEDED


def test_builds_finishing_in_a_stream_share_a_later_run(project, tmp_path):
    rpm = build_rpm(tmp_path / "rpms")[0]
    built_task(project, rpm)
    project_publish(project=project)
    repository = Repository.objects.get(project=project)
    assert repository_regenerate(repository_id=repository.pk) == 1
    # Another build for the same chroot is still running: more RPMs are on their way.
    BuildTaskFactory(build=BuildFactory(project=project, state=State.RUNNING), state=State.RUNNING)
    finished = built_task(project, rpm)
    project_publish(project=project)

    assert repository_regenerate(repository_id=repository.pk) == 0  # held back, not lost
    finished.refresh_from_db()
    assert finished.state == State.RUNNING

    # RUN_SPACING_SECONDS later (the delayed message): the run publishes what has come.
    Repository.objects.filter(pk=repository.pk).update(
        last_run_on=timezone.now() - timedelta(seconds=RUN_SPACING_SECONDS)
    )
    assert repository_regenerate(repository_id=repository.pk) == 1
    finished.refresh_from_db()
    assert finished.state == State.SUCCEEDED


def test_the_repository_lease_is_renewed_while_createrepo_runs(
    project, tmp_path, settings, monkeypatch
):
    settings.REPOSITORY_LEASE_SECONDS = 1
    slow = tmp_path / "slow-bin"
    slow.mkdir()
    real = shutil.which("createrepo_c")
    (slow / "createrepo_c").write_text(f'#!/bin/sh\nsleep 4\nexec {real} "$@"\n')
    (slow / "createrepo_c").chmod(0o755)
    monkeypatch.setenv("PATH", f"{slow}:{os.environ['PATH']}")
    task = built_task(project, build_rpm(tmp_path / "rpms")[0])
    project_publish(project=project)
    repository = Repository.objects.get(project=project)
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(repository_regenerate, repository_id=repository.pk)
        time.sleep(2.5)  # more than twice the lease: held only because it was renewed
        assert RepositoryLease.take(repository.pk) is None
        assert running.result(timeout=60) == 1
    repository.refresh_from_db()
    assert repository.locked_until is None  # released at the end, not left to run out
    task.refresh_from_db()
    assert task.state == State.SUCCEEDED


def test_a_deleted_build_leaves_the_repository_it_was_published_in(project, tmp_path, stub_broker):
    rpm = build_rpm(tmp_path / "rpms")[0]
    kept, deleted = (
        built_task(project, rpm),
        built_task(project, build_rpm(tmp_path / "w", name="world")[0]),
    )
    project_publish(project=project)
    repository = Repository.objects.get(project=project)
    repository_regenerate(repository_id=repository.pk)
    repository.refresh_from_db()
    assert repository.package_count == 2
    stub_broker.flush_all()
    deleted.build.refresh_from_db()

    build_delete(user=project.owner_user, build=deleted.build)

    # The results are the backend's: builds asks it by the actor's name, and removes nothing
    # itself (a web host apart has no RESULTS_ROOT of the backend's).
    assert task_dir(project, deleted).exists()
    [raw] = list(stub_broker.queues["repos"].queue)
    message = dramatiq.Message.decode(raw)
    assert message.actor_name == "remove_build_results"
    actors.remove_build_results.fn(*message.args)
    assert not task_dir(project, deleted).exists() and task_dir(project, kept).exists()
    repository_regenerate(repository_id=repository.pk)
    repository.refresh_from_db()
    assert (repository.package_count, repository.is_current) == (1, True)
    kept.refresh_from_db()
    assert kept.state == State.SUCCEEDED


def test_a_deleted_projects_results_are_removed_by_the_backend(project, tmp_path, stub_broker):
    task = built_task(project, build_rpm(tmp_path / "rpms")[0])
    BuildTask.objects.filter(pk=task.pk).update(state=State.SUCCEEDED)
    type(task.build).objects.filter(pk=task.build_id).update(state=State.SUCCEEDED)
    project_dir = task_dir(project, task).parent.parent
    stub_broker.flush_all()

    project_delete(user=project.owner_user, project=project)

    assert project_dir.exists()  # the web process removes nothing of the backend's
    [raw] = list(stub_broker.queues["repos"].queue)
    message = dramatiq.Message.decode(raw)
    assert message.actor_name == "remove_project_results"
    actors.remove_project_results.fn(*message.args)
    assert not project_dir.exists()


def test_a_late_removal_spares_the_project_made_again_under_the_same_name(project, tmp_path):
    old = built_task(project, build_rpm(tmp_path / "old")[0])
    project_publish(project=project)
    repository_regenerate(repository_id=Repository.objects.get(project=project).pk)
    old_dir = task_dir(project, old)
    BuildTask.objects.filter(pk=old.pk).update(state=State.SUCCEEDED)
    type(old.build).objects.filter(pk=old.build_id).update(state=State.SUCCEEDED)
    project_delete(user=project.owner_user, project=project)

    # Made again before the backend got to the deleted one's removal (a script's
    # delete-then-create): the removal must take only what the deleted project owned.
    again = ProjectFactory(owner_user=project.owner_user, name=project.name)
    project_key_ensure(project=again)
    new = built_task(again, build_rpm(tmp_path / "new", name="world")[0])
    project_publish(project=again)
    repository = Repository.objects.get(project=again)
    repository_regenerate(repository_id=repository.pk)

    services.project_results_remove(ownername=again.ownername, dirnames=[again.name])

    assert not old_dir.exists()
    assert task_dir(again, new).exists()
    assert not [p for p in old_dir.parent.parent.parent.iterdir() if p.name.startswith(".")]
    repository.refresh_from_db()
    assert not repository.is_current  # asked to publish again without the removed build
    repository_regenerate(repository_id=repository.pk)
    repository.refresh_from_db()
    assert repository.package_count == 1
    new.refresh_from_db()
    assert new.state == State.SUCCEEDED


def test_a_store_run_waits_while_a_removal_holds_the_owners_results(project, tmp_path):
    built_task(project, build_rpm(tmp_path / "rpms")[0])
    project_publish(project=project)
    repository = Repository.objects.get(project=project)
    with ThreadPoolExecutor(1) as pool:
        with services.owner_results_locked(project.ownername, exclusive=True):
            running = pool.submit(repository_regenerate, repository_id=repository.pk)
            time.sleep(1.5)
            assert not running.done()
        assert running.result(timeout=60) == 1
