"""Copr's read-only frontend ↔ backend endpoints (FE/views/backend_ns/backend_general.py).

What Copr's backend, copr-rpmbuild and operators' scripts read: the queue of build tasks,
the queue of repository work (Copr's "actions"), and one task's full job description.
Nothing secret is in them (no tokens, webhook secrets or keys), so, as in Copr, they need
no login; there is no write endpoint here, since coprsite runs its builders itself.
"""

import json
import uuid

from django.http import JsonResponse
from django.views.decorators.http import require_GET

from apps.api.backend import actions
from apps.builds import selectors as build_selectors
from apps.builds.models import BuildTask
from apps.core.paths import results_url
from apps.projects import build_config

FE_BE_API_VERSION = "9"  # Copr's backend refuses a frontend below this
DEFAULT_MEMORY_MB = 2048  # Copr's DEFAULT_BUILD_MEMORY; coprsite sets no per-build memory
SOURCE_TYPE_LINK = 1  # Copr's BuildSourceEnum("link"): RPM tasks build from the SRPM URL


def backend_json(data, status: int = 200) -> JsonResponse:
    response = JsonResponse(data, status=status, safe=False)
    response["Copr-FE-BE-API-Version"] = FE_BE_API_VERSION
    return response


def submitter_name(build) -> str:
    if build.submitter_id:
        return build.submitter.username
    return build.submitted_by


def sandbox(build) -> str:
    """Copr's `Build.sandbox`: builders are reused only by one submitter in one project;
    a build without a known submitter gets a sandbox of its own."""
    return f"{build.project.full_name}--{submitter_name(build) or uuid.uuid4()}"


def job_summary(task: BuildTask) -> dict:
    build = task.build
    summary = {
        "task_id": task.task_id,
        "build_id": build.pk,
        "project_owner": build.project.ownername,
        "sandbox": sandbox(build),
        "background": build.is_background,
        "chroot": task.chroot.name if task.chroot_id else None,
    }
    if task.chroot_id:
        summary["tags"] = []
        summary["allow_user_ssh"] = False
    return summary


@require_GET
def pending_jobs(request):
    """Source tasks first, then RPM tasks, each normal before background (Copr's order)."""
    jobs = [job_summary(task) for task in build_selectors.backend_pending_tasks(source=True)]
    jobs += [job_summary(task) for task in build_selectors.backend_pending_tasks(source=False)]
    return backend_json(jobs)


@require_GET
def pending_actions(request):
    """Waiting actions in Copr's `[{id, priority, project_owner}]` shape, in Copr's order."""
    return backend_json(
        [
            {key: record[key] for key in ("id", "priority", "project_owner")}
            for record in actions.waiting_actions()
        ]
    )


@require_GET
def pending_action(request):
    """The action Copr's backend would take next (all its columns), or null."""
    waiting = actions.waiting_actions()
    return backend_json(actions.without_owner(waiting[0]) if waiting else None)


@require_GET
def pending_action_count(request):
    return backend_json(len(actions.waiting_actions()))


@require_GET
def action_detail(request, action_id: str):
    """One waiting action by id; null once it is done (coprsite keeps no history of them)."""
    record = actions.action_by_id(int(action_id))
    return backend_json(actions.without_owner(record) if record else None)


@require_GET
def get_build_task(request, build_id: str, chroot_name: str):
    task_id = f"{build_id}-{chroot_name}"
    task = build_selectors.backend_build_task(int(build_id), chroot_name)
    if task is None:
        return backend_json({"msg": f"Build task {task_id} does not exist."}, status=404)
    project_chroot = (
        task.build.project.project_chroots.select_related("chroot")
        .filter(chroot=task.chroot)
        .first()
    )
    if project_chroot is None or not task.chroot.is_active or task.chroot.end_of_life:
        # Copr answers null for a chroot the project dropped or that reached its end of life.
        return backend_json(None)
    project_chroot.project = task.build.project
    return backend_json(build_task_record(task, project_chroot))


def build_task_record(task: BuildTask, project_chroot) -> dict:
    """Copr's `get_build_record`: everything a builder needs to build one chroot."""
    build = task.build
    project = build.project
    srpm_url = results_url(build.srpm_url) if build.srpm_url else None
    return {
        **job_summary(task),
        "project_name": project.name,
        "project_dirname": build.project_dirname,
        "submitter": submitter_name(build) or None,
        "memory_reqs": DEFAULT_MEMORY_MB,
        "timeout": build.timeout,
        "enable_net": build.enable_net,
        "git_repo": None,  # no dist-git: the task builds the SRPM of its source task
        "git_hash": None,
        "source_type": SOURCE_TYPE_LINK,
        "source_json": json.dumps({"url": srpm_url}),
        "srpm_url": srpm_url,
        "package_name": build.package_name or None,
        "package_version": build.package_version or None,
        "uses_devel_repo": project.devel_mode,
        "fedora_review": project.fedora_review,
        "appstream": project.appstream,
        "repo_priority": project.repo_priority,
        "ssh_public_keys": None,
        "storage": "backend",
        # repos, buildroot_pkgs, with/without_opts, isolation, modules, bootstrap[_image]
        **build_config.chroot_build_config(
            project_chroot,
            dirname=build.project_dirname,
            isolation=build.isolation,
            bootstrap=build.bootstrap,
        ),
    }
