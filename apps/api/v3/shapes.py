"""Copr's APIv3 output models (V3/schema/schemas.py): the keys clients read, times as epochs."""

from datetime import datetime

from apps.builds.models import Build, BuildTask, State
from apps.core.paths import results_url
from apps.packages.models import Package
from apps.projects.models import Project, ProjectChroot, ProjectPermission


def epoch(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value else None


def project_repo_url(project: Project, dirname: str | None = None) -> str:
    return results_url(f"{project.ownername}/{dirname or project.name}")


def project_shape(project: Project) -> dict:
    chroot_names = sorted(
        pc.chroot.name for pc in project.project_chroots.all() if pc.chroot.is_active
    )
    return {
        "id": project.pk,
        "name": project.name,
        "ownername": project.ownername,
        "full_name": project.full_name,
        "homepage": project.homepage or None,
        "contact": project.contact or None,
        "description": project.description,
        "instructions": project.instructions,
        "devel_mode": project.devel_mode,
        "persistent": project.persistent,
        "unlisted_on_hp": project.unlisted_on_hp,
        "auto_prune": project.auto_prune,
        "chroot_repos": {name: f"{project_repo_url(project)}/{name}/" for name in chroot_names},
        "additional_repos": list(project.additional_repos),
        "enable_net": project.enable_net,
        "bootstrap": project.bootstrap,
        "isolation": project.isolation,
        "module_hotfixes": project.module_hotfixes,
        "appstream": project.appstream,
        "packit_forge_projects_allowed": list(project.packit_forge_projects_allowed),
        "follow_fedora_branching": project.follow_fedora_branching,
        "repo_priority": project.repo_priority,
        "storage": "backend",
    }


def project_chroot_shape(project_chroot: ProjectChroot) -> dict:
    project = project_chroot.project
    return {
        "mock_chroot": project_chroot.chroot.name,
        "ownername": project.ownername,
        "projectname": project.name,
        "comps_name": project_chroot.comps_name or None,
        "delete_after_days": project_chroot.delete_after_days,
        "additional_repos": list(project_chroot.additional_repos),
        "additional_packages": list(project_chroot.additional_packages),
        "additional_modules": list(project_chroot.additional_modules),
        "with_opts": list(project_chroot.with_opts),
        "without_opts": list(project_chroot.without_opts),
        "isolation": project_chroot.isolation,
    }


def build_chroot_names(build: Build) -> list[str]:
    """The chroots of its RPM tasks; before the SRPM is known, the chroots chosen at submit."""
    names = [task.chroot.name for task in build.tasks.all() if task.chroot_id]
    return sorted(names) if names else list(build.requested_chroots)


def build_shape(build: Build) -> dict:
    project = build.project
    return {
        "id": build.pk,
        "state": build.state,
        "projectname": project.name,
        "ownername": project.ownername,
        "repo_url": project_repo_url(project, build.project_dirname),
        "source_package": {
            "name": build.package_name or None,
            "version": build.package_version or None,
            "url": results_url(build.srpm_url) if build.srpm_url else None,
        },
        "submitted_on": epoch(build.submitted_on),
        "started_on": epoch(build.started_on),
        "ended_on": epoch(build.ended_on),
        "submitter": build.submitter.username if build.submitter else build.submitted_by or None,
        "chroots": build_chroot_names(build),
        "project_dirname": build.project_dirname,
        "is_background": build.is_background,
    }


def task_result_url(task: BuildTask) -> str | None:
    if not task.result_dir:
        return None
    build = task.build
    return results_url(f"{build.project.ownername}/{build.project_dirname}/{task.result_dir}/")


def build_chroot_shape(task: BuildTask) -> dict:
    return {
        "name": task.chroot.name if task.chroot_id else "srpm-builds",
        "started_on": epoch(task.started_on),
        "ended_on": epoch(task.ended_on),
        "result_url": task_result_url(task),
        "state": task.state,
    }


def nevra(package: dict) -> dict:
    return {key: package.get(key) for key in ("name", "epoch", "version", "release", "arch")}


def package_shape(package: Package, *, latest: Build | None = None, succeeded=None) -> dict:
    source_dict = dict(package.source_json)
    if "srpm_build_method" in source_dict:
        source_dict["source_build_method"] = source_dict.pop("srpm_build_method")
    return {
        "id": package.pk,
        "name": package.name,
        "ownername": package.project.ownername,
        "projectname": package.project.name,
        "source_type": package.source_type,
        "source_dict": source_dict,
        "auto_rebuild": package.webhook_rebuild,
        "builds": {
            "latest": build_shape(latest) if latest else None,
            "latest_succeeded": build_shape(succeeded) if succeeded else None,
        },
    }


def latest_builds(package: Package, *, latest: bool, succeeded: bool) -> dict:
    builds = package.builds.select_related(
        "project__owner_user", "project__owner_group", "submitter"
    ).order_by("-id")
    return {
        "latest": builds.first() if latest else None,
        "succeeded": builds.filter(state=State.SUCCEEDED).first() if succeeded else None,
    }


def permissions_shape(permissions: list[ProjectPermission]) -> dict:
    return {
        "permissions": {
            p.user.username: {"admin": p.admin, "builder": p.builder} for p in permissions
        }
    }
