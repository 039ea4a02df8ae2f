"""The named phases of a running task (BuildTaskQuerySet) pick the tasks in that phase only."""

import pytest
from django.utils import timezone

from apps.builds.models import BuildTask, State
from apps.fleet.services import local_pool_ensure
from tests.factories import BuildFactory, BuildTaskFactory, chroot

pytestmark = pytest.mark.django_db


def task(name: str, **fields) -> BuildTask:
    return BuildTaskFactory(build=BuildFactory(), chroot=chroot(name), **fields)


def names(queryset) -> set[str]:
    return {task.chroot.name for task in queryset}


def test_each_phase_names_its_tasks():
    builder = local_pool_ensure()
    task("fedora-44-x86_64", state=State.PENDING)
    task("fedora-45-x86_64", state=State.RUNNING, builder=builder)
    task("fedora-43-x86_64", state=State.RUNNING, result_files=["a.rpm"])
    task("fedora-rawhide-x86_64", state=State.RUNNING, result_files=["a.rpm"], publish_serial=3)
    task("epel-9-x86_64", state=State.FORKED, result_files=["a.rpm"])
    task("epel-10-x86_64", state=State.FORKED, result_files=["a.rpm"], ended_on=timezone.now())
    task("centos-stream-10-x86_64", state=State.SUCCEEDED, result_files=["a.rpm"])

    tasks = BuildTask.objects.all()
    assert names(tasks.still_building()) == {"fedora-44-x86_64", "fedora-45-x86_64"}
    assert names(tasks.on_builder()) == {"fedora-45-x86_64"}
    assert names(tasks.awaiting_signing()) == {"fedora-43-x86_64"}
    assert names(tasks.before_publishing()) == {"fedora-45-x86_64", "fedora-43-x86_64"}
    assert names(tasks.publishing()) == {"fedora-rawhide-x86_64"}
    assert names(tasks.forked_uncopied()) == {"epel-9-x86_64"}
    assert "epel-9-x86_64" not in names(tasks.without_forked_uncopied())
    assert "epel-10-x86_64" in names(tasks.without_forked_uncopied())
