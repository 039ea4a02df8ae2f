"""Tasks of one build that end at the same moment still leave the build in a final state."""

import contextlib
import threading

import pytest
from django.db import connection

from apps.builds import lifecycle
from apps.builds.models import Build, State
from tests.factories import BuildFactory, BuildTaskFactory, ProjectFactory, chroot

pytestmark = pytest.mark.django_db(transaction=True)


def test_tasks_ending_together_leave_the_build_succeeded(monkeypatch):
    # Two chroots published by two createrepo runs finishing together. Each task_end
    # derives the build's state from the tasks; both must not derive it from a moment
    # when the other task was still running (PostgreSQL would let them, unlocked).
    project = ProjectFactory(chroot_names=["fedora-43-x86_64", "fedora-43-aarch64"])
    build = BuildFactory(project=project, state=State.RUNNING)
    tasks = [
        BuildTaskFactory(build=build, chroot=chroot(name), state=State.RUNNING)
        for name in ("fedora-43-x86_64", "fedora-43-aarch64")
    ]
    both_deriving = threading.Barrier(2, timeout=3)
    derive = lifecycle.derive_build_state

    def derive_together(**states):
        # Wait until the other thread derives too; with the build locked it never comes.
        with contextlib.suppress(threading.BrokenBarrierError):
            both_deriving.wait()
        return derive(**states)

    monkeypatch.setattr(lifecycle, "derive_build_state", derive_together)
    errors = []

    def end(task):
        try:
            lifecycle.task_end(task=task, state=State.SUCCEEDED)
        except Exception as error:  # surfaced by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=end, args=(task,)) for task in tasks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert Build.objects.get(pk=build.pk).state == State.SUCCEEDED
