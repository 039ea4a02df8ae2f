"""/api_3/build/* and /api_3/build-chroot/*: read, submit from every source, cancel, delete."""

from django.db import transaction
from django.http import JsonResponse

from apps.api.v3 import forms, shapes
from apps.api.v3.base import CoprView, as_int, listed, paginated
from apps.api.v3.lookups import build_or_404, build_task_or_404, project_or_404
from apps.builds.models import Build, State
from apps.builds.rpm_uploads import build_upload_rpm
from apps.builds.services import (
    build_cancel,
    build_check,
    build_delete,
    build_delete_many,
    build_submit,
)
from apps.core.errors import FieldErrors, InvalidForm, ServiceError
from apps.core.names import as_list
from apps.projects.build_config import bootstrap_setup, build_repos
from apps.projects.models import ProjectChroot

BUILD_ORDERS = {
    "id": "id",
    "state": "state",
    "submitted_on": "submitted_on",
    "started_on": "started_on",
    "ended_on": "ended_on",
    "package_name": "package_name",
}
TASK_ORDERS = {"id": "id", "name": "chroot__name"}
# build/create/<type>: the source methods with APIv3 keys (link and upload have their own).
SOURCE_BUILD_TYPES = tuple(forms.SOURCE_KEYS)
URL_SOURCE_SUFFIXES = (".src.rpm", ".nosrc.rpm", ".spec")


def builds_queryset():
    return Build.objects.select_related(
        "project__owner_user", "project__owner_group", "submitter"
    ).prefetch_related("tasks__chroot")


def rendered_build(build: Build) -> JsonResponse:
    return JsonResponse(shapes.build_shape(builds_queryset().get(pk=build.pk)))


class BuildGet(CoprView):
    def get(self, request, build_id, **kwargs):
        return rendered_build(build_or_404(build_id))


class BuildList(CoprView):
    def get(self, request, **kwargs):
        project = project_or_404(self.param("ownername"), self.param("projectname"))
        builds = Build.objects.filter(project=project)
        if self.param("packagename"):
            builds = builds.filter(package_name=self.param("packagename"))
        status = self.param("status")
        if status:
            if status not in State.values:
                raise ServiceError(f"status: '{status}' is not one of {', '.join(State.values)}.")
            builds = builds.filter(state=status)
        return listed(self, builds, shapes.build_shapes, orders=BUILD_ORDERS)


class BuildSourceChroot(CoprView):
    def get(self, request, build_id, **kwargs):
        build = build_or_404(build_id)
        source = build.tasks.filter(chroot__isnull=True).first()
        if source is None:
            raise ServiceError(f"Build {build.pk} has no source build.")
        return JsonResponse({"state": source.state, "result_url": shapes.task_result_url(source)})


class BuildSourceBuildConfig(CoprView):
    def get(self, request, build_id, **kwargs):
        build = build_or_404(build_id)
        return JsonResponse(
            {
                "source_type": build.source_type,
                "source_dict": build.source_json,
                "memory_limit": None,
                "timeout": build.timeout,
                "is_background": build.is_background,
            }
        )


class BuildBuiltPackages(CoprView):
    def get(self, request, build_id, **kwargs):
        build = build_or_404(build_id)
        tasks = build.tasks.select_related("chroot").filter(chroot__isnull=False)
        return JsonResponse(
            {
                task.chroot.name: {"packages": [shapes.nevra(p) for p in task.built_packages]}
                for task in tasks
            }
        )


class BuildCancel(CoprView):
    def post(self, request, build_id, **kwargs):
        user = self.authenticated_user()
        build = build_cancel(user=user, build=build_or_404(build_id))
        return rendered_build(build)

    put = post


class BuildDelete(CoprView):
    def post(self, request, build_id, **kwargs):
        user = self.authenticated_user()
        build = build_or_404(build_id)
        rendered = shapes.build_shape(builds_queryset().get(pk=build.pk))
        build_delete(user=user, build=build)
        return JsonResponse(rendered)

    delete = post


class BuildDeleteList(CoprView):
    def post(self, request, **kwargs):
        user = self.authenticated_user()
        raw = self.data.get("builds")
        if not isinstance(raw, list) or not raw:
            raise ServiceError('builds: Give the build ids as a list, e.g. {"builds": [42]}.')
        build_ids = [as_int(value, "builds", minimum=1) for value in raw]
        deleted = build_delete_many(user=user, build_ids=list(dict.fromkeys(build_ids)))
        return JsonResponse({"builds": deleted})

    delete = post


# --- submitting ---------------------------------------------------------------------------


class BuildSubmitView(CoprView):
    def project_and_options(self):
        """The project, the build options, and the problems found reading them so far."""
        project = project_or_404(self.param("ownername"), self.param("projectname"))
        errors = FieldErrors()
        return project, forms.build_options(self.data, errors), errors


class CheckBeforeBuild(BuildSubmitView):
    def post(self, request, **kwargs):
        user = self.authenticated_user()
        project, options, errors = self.project_and_options()
        build_check(user=user, project=project, options=options, errors=errors)
        return JsonResponse({"message": "It should be safe to submit a build like this"})


class BuildCreateUrl(BuildSubmitView):
    """One build per URL; Copr answers with a list even for one."""

    def post(self, request, **kwargs):
        user = self.authenticated_user()
        project, options, errors = self.project_and_options()
        urls = errors.check("pkgs", as_list, self.data.get("pkgs"), "pkgs")
        if not urls:
            if urls == []:
                errors.add("pkgs", "Give at least one URL of a .src.rpm or .spec file.")
            build_check(user=user, project=project, options=options, errors=errors)
        # With errors already found, the first build_submit reports them with its own.
        with transaction.atomic():
            builds = [
                build_submit(
                    user=user,
                    project=project,
                    source_type="link",
                    source_json={"url": url},
                    options=options,
                    errors=errors,
                )
                for url in urls
            ]
        rendered = [shapes.build_shape(builds_queryset().get(pk=b.pk)) for b in builds]
        meta = {"limit": None, "offset": None, "order": None, "order_type": None}
        return JsonResponse({"items": rendered, "meta": meta})


class BuildCreateUpload(BuildSubmitView):
    def post(self, request, **kwargs):
        user = self.authenticated_user()
        project, options, errors = self.project_and_options()
        upload = errors.check("pkgs", uploaded_package, request)
        if upload is None:
            build_check(user=user, project=project, options=options, errors=errors)
        build = build_submit(
            user=user,
            project=project,
            source_type="upload",
            source_json={},
            upload=upload,
            options=options,
            errors=errors,
        )
        return rendered_build(build)


class BuildCreateRpmUpload(BuildSubmitView):
    """copr-cli 2.6 `uploadrpm`: publish a built binary RPM without building anything."""

    def post(self, request, **kwargs):
        user = self.authenticated_user()
        project, options, errors = self.project_and_options()
        errors.raise_if_any()
        build = build_upload_rpm(
            user=user, project=project, upload=uploaded_package(request), options=options
        )
        return rendered_build(build)


class BuildCreateFromSource(BuildSubmitView):
    """create/<type> of SOURCE_BUILD_TYPES: create/scm, create/pypi, create/distgit, …"""

    def post(self, request, source_type, **kwargs):
        user = self.authenticated_user()
        project, options, errors = self.project_and_options()
        build = build_submit(
            user=user,
            project=project,
            source_type=source_type,
            source_json=forms.source_json(source_type, self.data),
            options=options,
            errors=errors,
        )
        return rendered_build(build)


def uploaded_package(request):
    upload = request.FILES.get("pkgs")
    if upload is None:
        raise InvalidForm({"pkgs": ["Send the package as the multipart file part 'pkgs'."]})
    return upload


# --- build chroots ------------------------------------------------------------------------


class BuildChrootGet(CoprView):
    def get(self, request, **kwargs):
        build = build_or_404(self.param("build_id", required=True))
        task = build_task_or_404(build, self.param("chrootname"))
        return JsonResponse(shapes.build_chroot_shape(task))


class BuildChrootList(CoprView):
    def get(self, request, **kwargs):
        build = build_or_404(self.param("build_id", required=True))
        tasks = build.tasks.select_related(
            "chroot", "build__project__owner_user", "build__project__owner_group"
        ).filter(chroot__isnull=False)
        return JsonResponse(paginated(self, tasks, shapes.build_chroot_shape, orders=TASK_ORDERS))


class BuildChrootBuildConfig(CoprView):
    def get(self, request, **kwargs):
        build = build_or_404(self.param("build_id", required=True))
        task = build_task_or_404(build, self.param("chrootname"))
        project_chroot = build.project.project_chroots.filter(chroot=task.chroot).first()
        # A chroot dropped from the project since still has the project's own repositories.
        repos_of = project_chroot or ProjectChroot(chroot=task.chroot)
        repos_of.project, repos_of.chroot = build.project, task.chroot
        return JsonResponse(
            {
                "repos": build_repos(repos_of, build.project_dirname),
                "additional_repos": list(project_chroot.additional_repos) if project_chroot else [],
                "additional_packages": list(project_chroot.additional_packages)
                if project_chroot
                else [],
                "with_opts": list(project_chroot.with_opts) if project_chroot else [],
                "without_opts": list(project_chroot.without_opts) if project_chroot else [],
                "memory_limit": None,
                "timeout": build.timeout,
                "enable_net": build.enable_net,
                "is_background": build.is_background,
                # bootstrap[, bootstrap_image]: the build's, else the chroot's, else the project's
                **bootstrap_setup(build.project, repos_of, build.bootstrap),
            }
        )


class BuildChrootBuiltPackages(CoprView):
    def get(self, request, **kwargs):
        build = build_or_404(self.param("build_id", required=True))
        task = build_task_or_404(build, self.param("chrootname"))
        return JsonResponse({"packages": [shapes.nevra(p) for p in task.built_packages]})
