"""Builds of a package's default source (on request, or from a forge's webhook), and
deleting a package with its builds."""

import dataclasses
import fnmatch

from django.db import transaction

from apps.builds import sources
from apps.builds.models import FINAL_STATES, Build
from apps.builds.services import BuildOptions, build_delete, build_submit
from apps.core.errors import Conflict, FieldErrors, PermissionDenied, ServiceError
from apps.fleet.selectors import chroots_checked_for_builders
from apps.packages.models import Package, SourceType
from apps.packages.services import check_can_edit
from apps.projects.models import Chroot, Project
from apps.projects.permissions import can_build_in


def package_delete(*, user, package: Package) -> None:
    """Delete a package and its builds; refused while one of its builds still runs."""
    check_can_edit(user, package.project)
    builds = list(Build.objects.filter(package=package).select_related("project"))
    running = [b.pk for b in builds if b.state not in FINAL_STATES]
    if running:
        raise Conflict(
            f"Package {package.name} has unfinished builds ({', '.join(map(str, running))}); "
            "cancel them or wait until they end."
        )
    with transaction.atomic():
        for build in builds:
            build_delete(user=user, build=build)
        package.delete()


def package_build(
    *,
    user,
    package: Package,
    options: BuildOptions = BuildOptions(),  # noqa: B008 (frozen)
    errors: FieldErrors | None = None,
) -> Build:
    """Build the package's default source in its chroots (minus its denylist)."""
    if not can_build_in(user, package.project):
        raise PermissionDenied(
            f"You are not allowed to build in the project {package.project.full_name}."
        )
    return submit_package_build(submitter=user, package=package, options=options, errors=errors)


def package_rebuild_from_webhook(*, package: Package, submitted_by: str, committish: str) -> Build:
    """A background build of the package at the pushed commit or tag (Copr's rebuild_package).

    The webhook secret authorised it; like Copr, the build has no submitting user, only
    `submitted_by` telling where the push came from.
    """
    source_json = dict(package.source_json)
    if committish and package.source_type == SourceType.SCM:
        source_json["committish"] = committish
    options = BuildOptions(background=True)
    owner = webhook_acting_user(package.project)
    with transaction.atomic():
        build = submit_package_build(
            submitter=owner, package=package, options=options, source_json=source_json
        )
        Build.objects.filter(pk=build.pk).update(submitter=None, submitted_by=submitted_by)
    build.refresh_from_db()
    return build


def submit_package_build(
    *,
    submitter,
    package: Package,
    options: BuildOptions,
    source_json: dict | None = None,
    errors: FieldErrors | None = None,
) -> Build:
    if package.source_type in ("", SourceType.UNSET):
        raise ServiceError(f"Package {package.name} has no source: set one before building it.")
    chroots = options.chroots
    if chroots is None:
        chroots = [c.name for c in chroots_checked_for_builders(package_chroots(package))]
    else:
        chroots = [c for c in chroots if not denied(package, c)] or chroots
    timeout = options.timeout if options.timeout is not None else package.timeout
    package_options = dataclasses.replace(options, chroots=chroots, timeout=timeout)
    with transaction.atomic():
        build = build_submit(
            user=submitter,
            project=package.project,
            source_type=package.source_type,
            source_json=source_json if source_json is not None else dict(package.source_json),
            options=package_options,
            errors=errors,
        )
        Build.objects.filter(pk=build.pk).update(package=package, package_name=package.name)
    build.refresh_from_db()
    return build


def package_chroots(package: Package) -> list[Chroot]:
    """The project's active chroots minus the denylist; all of them if nothing would remain."""
    enabled = list(
        Chroot.objects.filter(project_chroots__project=package.project, is_active=True).order_by(
            "name"
        )
    )
    allowed = [c for c in enabled if not denied(package, c.name)]
    return allowed or enabled


def denied(package: Package, chroot_name: str) -> bool:
    return any(fnmatch.fnmatch(chroot_name, pattern) for pattern in package.chroot_denylist)


def webhook_acting_user(project: Project):
    """Whose permission a webhook build is submitted under: the project's owner."""
    if project.owner_user_id:
        return project.owner_user
    member = project.owner_group.members.filter(is_active=True).order_by("pk").first()
    if member is None:
        raise PermissionDenied(f"The group owning {project.full_name} has no active member.")
    return member


def webhook_rebuild(
    *, project: Project, packages: list[Package], submitted_by: str, committish: str
) -> tuple[list[Build], list[str]]:
    """Background builds of `packages`; returns the builds and a line per package for history."""
    builds, lines = [], []
    for package in packages:
        try:
            build = package_rebuild_from_webhook(
                package=package, submitted_by=submitted_by, committish=committish
            )
        except ServiceError as error:
            lines.append(f"{package.name}: not built: {error.message}")
            continue
        builds.append(build)
        lines.append(f"{package.name}: build {build.pk}")
    return builds, lines


def custom_webhook_build(*, package: Package, payload: bytes, submitted_by: str) -> Build:
    """Copr's custom webhook: rebuild the package; a custom script gets the request body."""
    source_json = dict(package.source_json)
    if package.source_type == SourceType.CUSTOM:
        source_json["hook_data"] = True
    with transaction.atomic():
        build = submit_package_build(
            submitter=webhook_acting_user(package.project),
            package=package,
            options=BuildOptions(background=True),
            source_json=source_json,
        )
        Build.objects.filter(pk=build.pk).update(submitter=None, submitted_by=submitted_by)
        if package.source_type == SourceType.CUSTOM:
            sources.store_hook_payload(build.pk, payload)
    build.refresh_from_db()
    return build
