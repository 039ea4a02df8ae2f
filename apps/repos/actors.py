"""Dramatiq actors for repositories and signing keys."""

import dramatiq
from django.db import transaction

from apps.builds.models import TASK_RELATED, BuildTask
from apps.core.gone import quiet_when_gone
from apps.projects.models import Chroot, Project
from apps.repos import services
from apps.repos.models import Repository

# createrepo_c on a large chroot takes minutes; an hour means it is stuck.
REGENERATE_LIMIT_MS = 3600 * 1000


@dramatiq.actor(queue_name="repos", max_retries=3, time_limit=REGENERATE_LIMIT_MS)
def regenerate_repository(repository_id: int, attempt: int = 0) -> None:
    """Bring one chroot repository up to date (coalesced; see services). `attempt` counts
    earlier runs that found the store unavailable; their retries back off."""
    repository = Repository.objects.filter(pk=repository_id)
    with quiet_when_gone(f"repository {repository_id}", repository.exists):
        if repository.exists():
            services.repository_regenerate(repository_id=repository_id, attempt=attempt)


@dramatiq.actor(queue_name="repos", max_retries=3)
def remove_build_results(
    project_id: int,
    ownername: str,
    project_dirname: str,
    result_dirs: list[str],
    chroot_ids: list[int],
) -> None:
    """Remove a deleted build's result directories, then regenerate the chroot repositories
    it was published in (main repodata included)."""
    services.build_results_remove(
        ownername=ownername, project_dirname=project_dirname, result_dirs=result_dirs
    )
    project = Project.objects.filter(pk=project_id).first()
    if project is not None:  # else its results went with it
        chroots = list(Chroot.objects.filter(pk__in=chroot_ids))
        with transaction.atomic():
            services.repositories_request_publish(
                project=project, project_dirname=project_dirname, chroots=chroots
            )


@dramatiq.actor(queue_name="repos", max_retries=3)
def remove_project_results(ownername: str, dirnames: list[str]) -> None:
    """Remove a deleted project's result directories."""
    services.project_results_remove(ownername=ownername, dirnames=dirnames)


@dramatiq.actor(queue_name="sign", max_retries=3, time_limit=600_000)
def publish_task(task_id: int) -> None:
    """Sign a built task's RPMs, with whatever else of its project waits, and queue its
    repository (runs where KEYS_ROOT is)."""
    task = BuildTask.objects.select_related(*TASK_RELATED).filter(pk=task_id).first()
    if task is not None and task.awaits_signing:
        with quiet_when_gone(f"task {task_id}", BuildTask.objects.filter(pk=task_id).exists):
            services.project_publish(project=task.build.project, task_id=task.pk)


@dramatiq.actor(queue_name="sign", max_retries=3, time_limit=600_000)
def publish_project(project_id: int) -> None:
    """Sign what of a project's builds waits, once held back (runs where KEYS_ROOT is)."""
    project = Project.objects.filter(pk=project_id).first()
    if project is not None:
        with quiet_when_gone(f"project {project_id}", project_exists(project_id)):
            services.project_publish(project=project)


@dramatiq.actor(queue_name="sign", max_retries=3, time_limit=300_000)
def generate_project_key(project_id: int) -> None:
    """Make a new project's signing key (RSA 4096 takes seconds: never on the request path)."""
    project = Project.objects.filter(pk=project_id).first()
    if project is not None:
        with quiet_when_gone(f"project {project_id}", project_exists(project_id)):
            services.project_key_ensure(project=project)


@dramatiq.actor(queue_name="sign", max_retries=3, time_limit=3600_000)
def publish_fork(project_id: int, task_pairs: list[list[int]]) -> None:
    """Make a fork's key, copy and re-sign its forked builds' RPMs and publish them (runs
    where KEYS_ROOT is; a fork of a large project copies gigabytes, hence the hour)."""
    project = Project.objects.filter(pk=project_id).first()
    if project is not None:
        with quiet_when_gone(f"project {project_id}", project_exists(project_id)):
            services.forked_results_publish(project=project, task_pairs=task_pairs)


def project_exists(project_id: int):
    return Project.objects.filter(pk=project_id).exists
