"""Reads behind /api_3 that 404 with Copr's messages."""

from apps.builds.models import Build, BuildTask
from apps.core.errors import NotFound
from apps.core.names import MAX_BIGINT
from apps.packages.models import Package
from apps.projects.models import Chroot, Project, ProjectChroot


def project_or_404(ownername: str | None, projectname: str | None) -> Project:
    if not ownername or not projectname:
        raise NotFound("Both ownername and projectname are needed to find a project.")
    project = Project.objects.with_owner().by_ownername(ownername).filter(name=projectname).first()
    if project is None:
        raise NotFound(f"Project {ownername}/{projectname} does not exist.")
    return project


def build_or_404(build_id) -> Build:
    build = None
    if str(build_id).isdigit() and int(build_id) <= MAX_BIGINT:
        build = (
            Build.objects.select_related("project__owner_user", "project__owner_group", "submitter")
            .filter(pk=int(build_id))
            .first()
        )
    if build is None:
        raise NotFound(f"Build {build_id} does not exist.")
    return build


def build_task_or_404(build: Build, chrootname: str | None) -> BuildTask:
    task = (
        build.tasks.select_related("chroot").filter(chroot__name=chrootname).first()
        if chrootname
        else None
    )
    if task is None:
        raise NotFound(f"Build {build.pk} was not submitted to {chrootname} chroot.")
    return task


def chroot_or_404(chrootname: str | None) -> Chroot:
    chroot = Chroot.objects.filter(name=chrootname).first() if chrootname else None
    if chroot is None:
        raise NotFound(f"Chroot {chrootname} does not exist")
    return chroot


def project_chroot_or_404(project: Project, chrootname: str | None) -> ProjectChroot:
    chroot = chroot_or_404(chrootname)
    project_chroot = (
        ProjectChroot.objects.select_related("chroot")
        .filter(project=project, chroot=chroot)
        .first()
    )
    if project_chroot is None:
        raise NotFound(f"Chroot {chrootname} is not enabled in the project {project.full_name}.")
    return project_chroot


def package_or_404(project: Project, package_name: str | None) -> Package:
    package = project.packages.filter(name=package_name).first() if package_name else None
    if package is None:
        raise NotFound(f"No package with name {package_name} in copr {project.name}")
    return package
