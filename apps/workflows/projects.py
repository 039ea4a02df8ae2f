"""Project operations across apps: create with its key, delete with its builds and results,
fork with packages and builds, regenerate every repository."""

import logging

from django.db import OperationalError, transaction

from apps.accounts.models import User
from apps.builds.models import FINAL_STATES, Build
from apps.builds.services import builds_fork
from apps.builds.sources import UPLOADED_SOURCE_TYPES, discard_upload_on_commit
from apps.core.errors import Conflict, FieldErrors, PermissionDenied, ServiceError
from apps.core.queue import send_on_commit
from apps.packages.models import Package
from apps.projects import services as projects
from apps.projects.models import Project
from apps.projects.permissions import can_admin, can_edit
from apps.projects.services import (
    EDITABLE_FIELDS,
    NOT_FORKED_FIELDS,
    active_project_chroots,
    fork_chroot_settings,
)
from apps.repos.models import Repository
from apps.repos.services import (
    forked_results_request,
    project_key_request,
    repositories_request_publish,
)

logger = logging.getLogger(__name__)
# PostgreSQL's deadlock_detected.
DEADLOCK_SQLSTATE = "40P01"


def project_create(
    *,
    user: User,
    ownername: str,
    name: str,
    chroot_names: list[str],
    errors: FieldErrors | None = None,
    **fields,
) -> Project:
    """Create a project (apps.projects.services.project_create), ask for its signing key and
    for its empty repositories, in one transaction."""
    with transaction.atomic():
        project = projects.project_create(
            user=user,
            ownername=ownername,
            name=name,
            chroot_names=chroot_names,
            errors=errors,
            **fields,
        )
        project_key_request(project=project)
        repositories_request_new(project, chroot_ids=None)
    return project


def project_edit(
    *,
    user: User,
    project: Project,
    chroot_names: list[str] | None = None,
    errors: FieldErrors | None = None,
    **fields,
) -> Project:
    """Change project settings (apps.projects.services.project_edit), and regenerate every
    repository when devel mode changes, in one transaction."""
    devel_mode_before = project.devel_mode
    chroot_ids_before = set(project.project_chroots.values_list("chroot_id", flat=True))
    with transaction.atomic():
        projects.project_edit(
            user=user, project=project, chroot_names=chroot_names, errors=errors, **fields
        )
        if project.devel_mode != devel_mode_before:
            # As Copr: entering or leaving devel mode regenerates every repository, so the
            # main one shows all builds when devel mode ends.
            repositories_request_all(project)
        else:
            added = set(project.project_chroots.values_list("chroot_id", flat=True))
            if added := added - chroot_ids_before:
                repositories_request_new(project, chroot_ids=added)
    return project


def repositories_request_new(project: Project, *, chroot_ids: set[int] | None) -> None:
    """Ask for the empty repositories of a new project or of newly enabled chroots (all when
    `chroot_ids` is None): as Copr's createrepo action (reasons new_project, new_chroot), so
    a client waiting for repodata/repomd.xml finds it before the first build."""
    project_chroots = project.project_chroots.select_related("chroot")
    if chroot_ids is not None:
        project_chroots = project_chroots.filter(chroot_id__in=chroot_ids)
    chroots = [pc.chroot for pc in project_chroots]
    repositories_request_publish(project=project, project_dirname=project.name, chroots=chroots)


def project_delete(*, user: User, project: Project) -> None:
    """Delete a project with its builds and published results (not while builds run)."""
    if not can_admin(user, project):
        raise PermissionDenied(f"You are not allowed to delete {project.full_name}.")
    if project.persistent and not user.is_staff:
        raise PermissionDenied(f"{project.full_name} is persistent; only staff may delete it.")
    if project.builds.exclude(state__in=FINAL_STATES).exists():
        raise Conflict(f"{project.full_name} has unfinished builds; cancel them first.")
    ownername = project.ownername
    dirnames = sorted({project.name, *project.builds.values_list("project_dirname", flat=True)})
    uploaded = project.builds.filter(source_type__in=UPLOADED_SOURCE_TYPES)
    uploaded_build_ids = list(uploaded.values_list("pk", flat=True))
    for attempt in range(1, DELETE_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                project_lock_for_delete(project)
                project.delete()
                # Uploads normally go with their source task; this catches any a dead
                # process left.
                for build_id in uploaded_build_ids:
                    discard_upload_on_commit(build_id)
                # The results are the backend's (RESULTS_ROOT): it removes them.
                send_on_commit("remove_project_results", ownername, dirnames)
            return
        except OperationalError as error:
            if not is_deadlock(error) or attempt == DELETE_ATTEMPTS:
                raise
            logger.info("deleting %s met a deadlock; trying again", project.full_name)


# The delete takes its locks in the workers' order (project_lock_for_delete), yet PostgreSQL
# still chose it as a deadlock's victim once beside three workers in CI (2026-12-07): it
# rolled back whole, so it is simply tried again.
DELETE_ATTEMPTS = 3


def is_deadlock(error: OperationalError) -> bool:
    return getattr(error.__cause__, "sqlstate", None) == DEADLOCK_SQLSTATE


def project_lock_for_delete(project: Project) -> None:
    """Lock the project's rows in the order the workers take them: project (key making),
    repositories, builds (publishing ends tasks build first), and only then delete.

    The cascade deletes tasks first and builds last: against a createrepo run or a key being
    made for the project at that moment, PostgreSQL found a deadlock and failed one side.
    """
    for rows in (
        Project.objects.filter(pk=project.pk),
        Repository.objects.filter(project=project),
        Build.objects.filter(project=project),
    ):
        list(rows.select_for_update().order_by("pk").values_list("pk", flat=True))


def project_fork(
    *, user: User, project: Project, ownername: str, name: str, confirm: bool = False
) -> tuple[Project, bool]:
    """Copy a project with its packages and latest successful builds; returns (fork, created).

    Only rows are written here, in one transaction: the forked builds stay `forked` with no
    end time while a message on the sign queue makes the fork's key, copies and re-signs
    their RPMs and publishes them (RSA key generation and rpmsign take seconds, never the
    request's). Forking into an existing project needs `confirm`, as in Copr.
    """
    existing = Project.objects.with_owner().by_ownername(ownername).filter(name=name).first()
    if existing is not None and not confirm:
        # Copr's two lines: python-copr prints a message of several lines as `- ` items.
        raise ServiceError(
            f"You are about to fork into existing project: {existing.full_name}\n"
            "Please use --confirm if you really want to do this"
        )
    if existing is not None and not can_edit(user, existing):
        raise PermissionDenied(f"You are not allowed to fork into {existing.full_name}.")
    if existing is not None and existing.pk == project.pk:
        raise ServiceError("A project cannot be forked into itself.")
    with transaction.atomic():
        fork = existing or project_create(
            user=user,
            ownername=ownername,
            name=name,
            chroot_names=[pc.chroot.name for pc in active_project_chroots(project)],
            **{f: getattr(project, f) for f in EDITABLE_FIELDS - NOT_FORKED_FIELDS},
        )
        Project.objects.filter(pk=fork.pk).update(forked_from=project)
        fork_chroot_settings(project, fork)
        fork_packages(project, fork)
        forked_results_request(project=fork, tasks=builds_fork(source=project, target=fork))
    fork.refresh_from_db()
    return fork, existing is None


def fork_packages(source: Project, target: Project) -> None:
    for package in source.packages.all():
        Package.objects.update_or_create(
            project=target,
            name=package.name,
            defaults={
                "source_type": package.source_type,
                "source_json": package.source_json,
                "max_builds": package.max_builds,
                "timeout": package.timeout,
                "chroot_denylist": package.chroot_denylist,
                # A fork must not rebuild on pushes to the original's repository.
                "webhook_rebuild": False,
            },
        )


def project_regenerate_repos(*, user: User, project: Project) -> None:
    """Run createrepo again on every chroot repository of the project (all its dirs)."""
    if not can_edit(user, project):
        raise PermissionDenied(f"You are not allowed to regenerate repositories of {project}.")
    with transaction.atomic():
        repositories_request_all(project)


def repositories_request_all(project: Project) -> None:
    """Ask for a run of every chroot repository of every directory of the project."""
    chroots = [pc.chroot for pc in project.project_chroots.select_related("chroot")]
    dirnames = {project.name} | set(
        Build.objects.filter(project=project).values_list("project_dirname", flat=True)
    )
    for dirname in sorted(dirnames):
        repositories_request_publish(project=project, project_dirname=dirname, chroots=chroots)
