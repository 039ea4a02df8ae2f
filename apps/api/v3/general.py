"""/api_3 root, auth-check, api-token, mock-chroots, monitor, webhook secret and rpmrepo."""

from django.http import JsonResponse

from apps.accounts.services import api_token_regenerate
from apps.api.v3.base import CoprView
from apps.api.v3.lookups import project_or_404
from apps.api.v3.shapes import task_result_url
from apps.builds.logs import BACKEND_LOG, log_link_name
from apps.builds.models import BuildTask
from apps.builds.states import STATUS_NUMBERS
from apps.core.errors import NotFound, ServiceError
from apps.core.names import as_list
from apps.core.paths import results_url
from apps.projects.models import Chroot
from apps.projects.services import project_webhook_secret_regenerate
from builders.livelog import LOG_NAME

MONITOR_FIELDS = ("url_build_log", "url_backend_log", "url_build")


class Home(CoprView):
    def get(self, request, **kwargs):
        return JsonResponse({"version": 3})


class AuthCheck(CoprView):
    def get(self, request, **kwargs):
        user = self.authenticated_user()
        return JsonResponse({"id": user.pk, "name": user.username})


class ApiToken(CoprView):
    """A new login/token pair for the caller (copr-cli new-api-token rewrites its config)."""

    def post(self, request, **kwargs):
        issued = api_token_regenerate(user=self.authenticated_user())
        return JsonResponse(
            {
                "api_login": issued.login,
                "api_token": issued.token,
                "expiration": issued.expires_on.isoformat(),
            }
        )


class MockChrootList(CoprView):
    def get(self, request, **kwargs):
        chroots = Chroot.objects.filter(is_active=True).order_by("name")
        return JsonResponse({chroot.name: chroot.comment for chroot in chroots})


class WebhookGenerate(CoprView):
    def post(self, request, **kwargs):
        user = self.authenticated_user()
        project = project_or_404(self.param("ownername"), self.param("projectname"))
        secret = project_webhook_secret_regenerate(user=user, project=project)
        return JsonResponse(
            {
                "id": project.pk,
                "name": project.name,
                "ownername": project.ownername,
                "full_name": project.full_name,
                "webhook_secret": secret,
            }
        )


class Monitor(CoprView):
    """The newest task of every package in every chroot of a project directory."""

    def get(self, request, **kwargs):
        project = project_or_404(self.param("ownername"), self.param("projectname"))
        fields = as_list(request.GET.getlist("additional_fields[]"))
        unknown = sorted(set(fields) - set(MONITOR_FIELDS))
        if unknown:
            raise ServiceError(
                f"Wrong additional_fields value(s): {', '.join(unknown)}; "
                f"allowed: {', '.join(MONITOR_FIELDS)}."
            )
        dirname = self.param("project_dirname") or project.name
        tasks = (
            BuildTask.objects.filter(
                build__project=project, build__project_dirname=dirname, chroot__isnull=False
            )
            .exclude(build__package_name="")
            .select_related("chroot", "build__project__owner_user", "build__project__owner_group")
            .order_by("build_id")
        )
        packages: dict[str, dict] = {}
        for task in tasks:  # ascending ids: the newest build of each chroot wins
            chroots = packages.setdefault(task.build.package_name, {})
            chroots[task.chroot.name] = monitor_entry(task, fields)
        return JsonResponse(
            {
                "output": "ok",
                "message": "Project monitor request successful",
                "packages": [
                    {"name": name, "chroots": packages[name]} for name in sorted(packages)
                ],
            }
        )


def monitor_entry(task: BuildTask, fields: list[str]) -> dict:
    entry = {
        "state": task.state,
        "status": STATUS_NUMBERS.get(task.state, 1000),
        "build_id": task.build_id,
        "pkg_version": task.build.package_version or None,
    }
    base = task_result_url(task)
    if "url_build_log" in fields:
        entry["url_build_log"] = f"{base}{log_link_name(task, LOG_NAME)}" if base else None
    if "url_backend_log" in fields:
        entry["url_backend_log"] = f"{base}{log_link_name(task, BACKEND_LOG)}" if base else None
    return entry


class RpmRepo(CoprView):
    """What the DNF5 copr plugin reads to write its repo file."""

    def get(self, request, ownername, dirname, name_release, **kwargs):
        project = project_or_404(ownername, dirname.split(":")[0])
        chroots = [
            pc.chroot
            for pc in project.project_chroots.select_related("chroot")
            if pc.chroot.is_active and pc.chroot.name.startswith(f"{name_release}-")
        ]
        if not chroots:
            raise NotFound(f"Chroot {name_release} is not enabled in {project.full_name}.")
        opts = {}
        if project.module_hotfixes:
            opts["module_hotfixes"] = "1"
        if project.repo_priority is not None:
            opts["priority"] = str(project.repo_priority)
        return JsonResponse(
            {
                "results_url": results_url().rstrip("/"),
                "repos": {name_release: {"arch": {c.arch: {"opts": dict(opts)} for c in chroots}}},
                "directories": {dirname: {}},
                "dependencies": [],
            }
        )
