"""Reads behind /api/v1: lists without N+1 queries, lookups that 404 with a clear message."""

from django.db.models import F

from apps.builds.models import Build, BuildTask
from apps.core.errors import NotFound
from apps.projects.models import Project


def projects():
    return Project.objects.with_owner().with_chroot_names()


def project_or_404(ownername: str, name: str, *, queryset=None) -> Project:
    """The project with its owner; pass `projects()` to render it with its chroots."""
    queryset = Project.objects.with_owner() if queryset is None else queryset
    project = queryset.by_ownername(ownername).filter(name=name).first()
    if project is None:
        raise NotFound(f"Project {ownername}/{name} does not exist.")
    return project


def builds():
    """Newest first, with what the build shape and its links need."""
    return Build.objects.select_related(
        "project__owner_user", "project__owner_group", "submitter"
    ).order_by("-id")


def build_or_404(build_id: int) -> Build:
    build = builds().filter(pk=build_id).first()
    if build is None:
        raise NotFound(f"Build {build_id} does not exist.")
    return build


def tasks():
    """The source task first, then the chroot tasks by chroot name."""
    return BuildTask.objects.select_related(
        "chroot", "build__project__owner_user", "build__project__owner_group"
    ).order_by("build_id", F("chroot__name").asc(nulls_first=True))


def task_or_404(task_id: int) -> BuildTask:
    task = tasks().filter(pk=task_id).first()
    if task is None:
        raise NotFound(f"Task {task_id} does not exist.")
    return task
