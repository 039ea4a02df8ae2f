"""A fork's request writes rows and queues one sign message; that message copies, re-signs and
publishes, once, and ends quietly for an original deleted before the copy."""

import shutil
from datetime import timedelta
from pathlib import Path

import dramatiq
import pytest
from django.utils import timezone

from apps.builds.models import Build, BuildTask, State
from apps.repos import services
from apps.repos.models import KeyState, Repository, SigningKey
from apps.workflows.projects import project_fork
from apps.workflows.reconcile import reconcile_all
from tests.factories import BuildFactory, BuildTaskFactory, ProjectFactory, UserFactory, chroot
from tests.repos.rpm_helpers import build_rpm, import_public_key, rpm_checksig

pytestmark = pytest.mark.django_db(transaction=True)
CHROOT = "fedora-43-x86_64"


@pytest.fixture
def original(settings, tmp_path):
    """A project with one succeeded build whose RPM lies in its results tree."""
    settings.KEYS_ROOT = tmp_path / "keys"
    settings.RESULTS_ROOT = tmp_path / "results"
    project = ProjectFactory(chroot_names=[CHROOT])
    rpm = build_rpm(tmp_path / "rpms")[0]
    build = BuildFactory(project=project, state=State.SUCCEEDED, package_name="hello")
    task = BuildTaskFactory(
        build=build,
        chroot=chroot(CHROOT),
        state=State.SUCCEEDED,
        result_dir=f"{CHROOT}/{build.pk:08d}-hello",
        result_files=[rpm.name],
    )
    directory = Path(settings.RESULTS_ROOT) / project.ownername / project.name / task.result_dir
    directory.mkdir(parents=True)
    shutil.copy(rpm, directory)
    return project


def sign_message(broker) -> dramatiq.Message:
    messages = [dramatiq.Message.decode(raw) for raw in list(broker.queues["sign"].queue)]
    (message,) = [m for m in messages if m.actor_name == "publish_fork"]
    return message


def test_the_request_queues_the_signing_and_the_message_signs_once(
    original, stub_broker, tmp_path, settings
):
    bob = UserFactory(username="bob")
    fork, _ = project_fork(user=bob, project=original, ownername="bob", name="fork")
    task = BuildTask.objects.get(build__project=fork)
    assert task.ended_on is None and Build.objects.get(project=fork).ended_on is None
    assert not SigningKey.objects.filter(project=fork, state=KeyState.READY).exists()
    assert not (Path(settings.KEYS_ROOT) / "bob").exists()
    message = sign_message(stub_broker)
    assert message.args[0] == fork.pk

    services.forked_results_publish(project=fork, task_pairs=message.args[1])
    task.refresh_from_db()
    assert task.ended_on is not None and task.state == State.FORKED
    assert task.state_reason == f"forked from build {original.builds.get().pk}"
    repository = Repository.objects.get(project=fork)
    # 1: the new project's empty repodata (asked for at its creation); 2: the forked builds.
    assert repository.requested_serial == 2
    key = SigningKey.objects.get(project=fork, state=KeyState.READY)
    pubkey = tmp_path / "fork.gpg"
    pubkey.write_text(key.public_key)
    import_public_key(pubkey, dbpath=tmp_path / "rpmdb")
    rpm = Path(settings.RESULTS_ROOT) / "bob/fork" / task.result_dir / task.result_files[0]
    assert rpm_checksig(rpm, dbpath=tmp_path / "rpmdb").returncode == 0

    services.forked_results_publish(project=fork, task_pairs=message.args[1])  # redelivered
    assert Repository.objects.get(project=fork).requested_serial == 2


def test_an_original_deleted_before_the_copy_ends_the_forked_task_quietly(
    original, stub_broker, caplog
):
    bob = UserFactory(username="bob")
    fork, _ = project_fork(user=bob, project=original, ownername="bob", name="fork")
    message = sign_message(stub_broker)
    original.builds.all().delete()

    services.forked_results_publish(project=fork, task_pairs=message.args[1])
    task = BuildTask.objects.get(build__project=fork)
    assert task.ended_on is not None and task.result_files == []
    assert "the original build was deleted" in task.state_reason
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


def overdue(fork) -> None:
    """Make the fork's copy look asked for longer ago than reconcile waits."""
    long_ago = timezone.now() - services.FORK_COPY_PATIENCE - timedelta(minutes=1)
    BuildTask.objects.filter(build__project=fork).update(heartbeat_on=long_ago)


def test_a_copy_whose_message_was_lost_is_asked_for_again_by_reconcile(
    original, stub_broker, tmp_path, settings
):
    bob = UserFactory(username="bob")
    fork, _ = project_fork(user=bob, project=original, ownername="bob", name="fork")
    stub_broker.flush_all()  # the message, or the worker that took it, is lost
    assert services.forked_copies_reconcile() == 0  # not overdue yet: the copy may be running

    overdue(fork)
    assert services.forked_copies_reconcile() == 1
    assert services.forked_copies_reconcile() == 0  # asked for once per patience, not per tick
    message = sign_message(stub_broker)
    services.forked_results_publish(project=fork, task_pairs=message.args[1])
    task = BuildTask.objects.get(build__project=fork)
    assert task.ended_on is not None and task.attempt == 1
    assert task.state_reason == f"forked from build {original.builds.get().pk}"
    key = SigningKey.objects.get(project=fork, state=KeyState.READY)
    pubkey = tmp_path / "fork.gpg"
    pubkey.write_text(key.public_key)
    import_public_key(pubkey, dbpath=tmp_path / "rpmdb")
    rpm = Path(settings.RESULTS_ROOT) / "bob/fork" / task.result_dir / task.result_files[0]
    assert rpm_checksig(rpm, dbpath=tmp_path / "rpmdb").returncode == 0


def test_a_copy_that_never_finishes_ends_after_the_last_attempt(original, broker, settings):
    bob = UserFactory(username="bob")
    fork, _ = project_fork(user=bob, project=original, ownername="bob", name="fork")
    broker.flush_all()
    for _ in range(settings.MAX_TASK_ATTEMPTS - 1):
        overdue(fork)
        assert services.forked_copies_reconcile() == 1
    overdue(fork)
    assert services.forked_copies_reconcile() == 0
    task = BuildTask.objects.get(build__project=fork)
    assert task.ended_on is not None and task.result_files == []
    assert "attempts did not finish; fork again" in task.state_reason
    assert Build.objects.get(project=fork).ended_on is not None


def test_the_reconcile_tick_asks_for_overdue_copies(original, broker):
    bob = UserFactory(username="bob")
    fork, _ = project_fork(user=bob, project=original, ownername="bob", name="fork")
    broker.flush_all()
    overdue(fork)
    reconcile_all()
    assert BuildTask.objects.get(build__project=fork).attempt == 1
