"""Deleting projects while the worker runs their work: every actor ends quietly.

A real in-process Dramatiq worker runs source tasks, RPM builds, signing, createrepo and key
generation while projects are canceled and deleted under it, at each of those stages. No
actor may raise (Dramatiq logs that at ERROR), log an error, or be retried.
"""

import contextlib
import logging
import time

import pytest

from apps.builds.models import FINAL_STATES, Build, BuildTask, State
from apps.builds.services import build_cancel, build_delete_many
from apps.core.errors import Conflict
from apps.projects.models import Project
from apps.repos.models import Repository
from apps.workflows.projects import project_create, project_delete
from tests.builders.srpm_factory import make_srpm
from tests.e2e.conftest import wait_for
from tests.e2e.test_pipeline import submit_upload

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
X86 = "fedora-43-x86_64"
PROJECT = "tools"


def tasks_of_project():
    return BuildTask.objects.filter(
        build__project__name=PROJECT, build__project__owner_user__username="packager"
    )


# What the worker is busy with when the project is deleted.
STAGES = {
    "source task": lambda: tasks_of_project().filter(chroot__isnull=True, state=State.RUNNING),
    "RPM build": lambda: tasks_of_project().filter(
        chroot__isnull=False, state=State.RUNNING, builder__isnull=False
    ),
    "signing": lambda: (
        tasks_of_project()
        .filter(state=State.RUNNING, builder__isnull=True, publish_serial__isnull=True)
        .exclude(result_files=[])
    ),
    "createrepo": lambda: tasks_of_project().filter(
        state=State.RUNNING, publish_serial__isnull=False
    ),
}


def cancel_builds(user, project: Project) -> None:
    for build in Build.objects.filter(project=project).exclude(state__in=FINAL_STATES):
        with contextlib.suppress(Conflict):  # it finished meanwhile: nothing to cancel
            build_cancel(user=user, build=build)


def cancel_and_delete(user, project: Project) -> None:
    """What a packager does to get rid of a project at once: cancel its builds, delete it."""
    cancel_builds(user, project)
    project_delete(user=user, project=Project.objects.get(pk=project.pk))


def failures(caplog) -> list[str]:
    return [
        f"{record.name}: {record.getMessage()}"
        for record in caplog.records
        if record.levelno >= logging.ERROR
        or (record.name.startswith("dramatiq") and "Retrying" in record.getMessage())
    ]


def test_deleting_projects_while_work_runs_ends_every_actor_quietly(
    live_server, worker, packager, tmp_path, caplog
):
    caplog.set_level(logging.INFO)
    user, token, first = packager
    first.delete()  # each round makes its own `tools`
    # Slow enough to be caught building, small enough to keep the test short.
    srpm = make_srpm(tmp_path, name="hello", build_script="sleep 2; gcc -o hello hello.c")
    seen = []

    # Key generation in flight: a project deleted right after it was created.
    for _ in range(3):
        project = project_create(user=user, ownername="packager", name=PROJECT, chroot_names=[X86])
        project_delete(user=user, project=project)

    for stage, busy in STAGES.items():
        project = project_create(user=user, ownername="packager", name=PROJECT, chroot_names=[X86])
        for _ in range(3):
            submit_upload(live_server, token, srpm)
        wait_for(busy().exists, timeout=120, interval=0.05, what=f"a {stage}")
        seen.append(stage)
        cancel_and_delete(user, project)

    # Builds deleted, not their project, while they build.
    project = project_create(user=user, ownername="packager", name=PROJECT, chroot_names=[X86])
    for _ in range(3):
        submit_upload(live_server, token, srpm)
    wait_for(STAGES["RPM build"]().exists, timeout=120, interval=0.05, what="an RPM build")
    cancel_builds(user, project)
    build_delete_many(user=user, build_ids=list(project.builds.values_list("pk", flat=True)))

    # Let the worker finish whatever it had in hand about the deleted rows.
    time.sleep(8)
    assert seen == list(STAGES)
    assert not Build.objects.exists()
    assert not Repository.objects.exclude(project=project).exists()
    assert failures(caplog) == []
