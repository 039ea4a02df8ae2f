"""Reads behind /api/v1: lists without N+1 queries, lookups that 404 with a clear message."""

from django.db.models import F

from apps.builds.models import Build, BuildTask
from apps.core.errors import NotFound
from apps.projects.models import Project, ProjectChroot


def projects():
    """With their owners; `with_chroot_names` adds what the project shape needs besides."""
    return Project.objects.with_owner()


def with_chroot_names(projects: list[Project]) -> list[Project]:
    """Set `chroot_names` (sorted) on each project, read in one query as plain values: a
    page of projects would otherwise make an instance of each enabled chroot and its row."""
    names: dict[int, list[str]] = {project.pk: [] for project in projects}
    enabled = (
        ProjectChroot.objects.filter(project__id__in_array=list(names))
        .order_by("project_id", "chroot__name")
        .values_list("project_id", "chroot__name")
    )
    for project_id, name in enabled:
        names[project_id].append(name)
    for project in projects:
        project.chroot_names = names[project.pk]
    return projects


def project_shaped(pk: int) -> Project:
    """One project with what the project shape reads."""
    return with_chroot_names([projects().get(pk=pk)])[0]


def project_or_404(ownername: str, name: str) -> Project:
    """The project with its owner."""
    project = projects().by_ownername(ownername).filter(name=name).first()
    if project is None:
        raise NotFound(f"Project {ownername}/{name} does not exist.")
    return project


def builds():
    """Newest first, with what the build shape and its links need."""
    return Build.objects.select_related(
        "project__owner_user", "project__owner_group", "submitter"
    ).order_by("-id")


# What the build shape reads. A list of a hundred builds then skips the builds' other JSON
# columns and all but the names of their projects and owners: a third of its CPU.
BUILD_SHAPE_FIELDS = (
    *("id", "state", "submitted_on", "started_on", "ended_on", "source_type", "source_json"),
    *("package_name", "package_version", "enable_net", "repos", "built_packages"),
    *("submitter__username", "project__name"),
    *("project__owner_user__username", "project__owner_group__name"),
)


def listed_builds():
    """`builds()` with only the columns of `BUILD_SHAPE_FIELDS`, for the lists."""
    return builds().only(*BUILD_SHAPE_FIELDS)


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
