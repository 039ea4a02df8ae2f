"""/api_3/package/*: get, list with latest builds, add and edit per source, reset, build, delete."""

from django.http import JsonResponse

from apps.api.v3 import forms, shapes
from apps.api.v3.base import CoprView, as_bool, listed
from apps.api.v3.builds import rendered_build
from apps.api.v3.lookups import package_or_404, project_or_404
from apps.builds.package_builds import package_build, package_delete
from apps.core.errors import Conflict, FieldErrors
from apps.core.names import package_name_errors
from apps.packages.models import Package
from apps.packages.services import (
    package_add,
    package_edit,
    package_reset,
)

PACKAGE_ORDERS = {"id": "id", "name": "name"}
# python-copr puts the literal `None` in the path when an edit keeps the source type.
NO_SOURCE_TYPE = ("", "None", "none")


class PackageView(CoprView):
    def project(self):
        return project_or_404(self.param("ownername"), self.param("projectname"))

    def package(self):
        name = self.param("packagename") or self.param("package_name")
        return package_or_404(self.project(), name)

    def wants(self) -> dict[str, bool]:
        return {
            "latest": bool(as_bool(self.request.GET.get("with_latest_build"))),
            "succeeded": bool(as_bool(self.request.GET.get("with_latest_succeeded_build"))),
        }

    def rendered(self, package: Package) -> dict:
        one = Package.objects.filter(pk=package.pk)
        one = shapes.packages_for_shapes(one, **self.wants())
        return shapes.package_shapes(one, project=package.project)[0]


class PackageGet(PackageView):
    def get(self, request, **kwargs):
        return JsonResponse(self.rendered(self.package()))


class PackageList(PackageView):
    def get(self, request, **kwargs):
        project = self.project()
        packages = Package.objects.filter(project=project)
        packages = shapes.packages_for_shapes(packages, **self.wants())

        def rendered(rows):
            return shapes.package_shapes(rows, project=project)

        return listed(self, packages, rendered, orders=PACKAGE_ORDERS)


class PackageAdd(PackageView):
    def post(self, request, source_type_text, **kwargs):
        user = self.authenticated_user()
        project = self.project()
        name = self.param("package_name", required=True)
        errors = FieldErrors()
        errors.add("package_name", *package_name_errors(name))
        settings = forms.package_settings(self.data, errors)
        try:
            package = package_add(
                user=user,
                project=project,
                name=name,
                source_type=source_type_text,
                source_json=forms.source_json(source_type_text, self.data),
                errors=errors,
                **settings,
            )
        except Conflict as error:
            raise Conflict(f"Package {name} already exists in copr {project.full_name}.") from (
                error
            )
        return JsonResponse(self.rendered(package))


class PackageEdit(PackageView):
    def post(self, request, source_type_text="", **kwargs):
        user = self.authenticated_user()
        package = self.package()
        source_type = None if source_type_text in NO_SOURCE_TYPE else source_type_text
        kept_type = source_type or package.source_type
        source = None
        if source_type is not None or kept_type in forms.SOURCE_KEYS:
            source = forms.source_json(kept_type, self.data, partial=True)
        errors = FieldErrors()
        settings = forms.package_settings(self.data, errors)
        package = package_edit(
            user=user,
            package=package,
            source_type=source_type,
            source_json=source,
            errors=errors,
            **settings,
        )
        return JsonResponse(self.rendered(package))


class PackageReset(PackageView):
    def post(self, request, **kwargs):
        user = self.authenticated_user()
        package = package_reset(user=user, package=self.package())
        return JsonResponse(self.rendered(package))

    put = post


class PackageBuild(PackageView):
    def post(self, request, **kwargs):
        user = self.authenticated_user()
        errors = FieldErrors()
        options = forms.build_options(self.data, errors)
        build = package_build(user=user, package=self.package(), options=options, errors=errors)
        return rendered_build(build)


class PackageDelete(PackageView):
    def post(self, request, **kwargs):
        user = self.authenticated_user()
        package = self.package()
        rendered = self.rendered(package)
        package_delete(user=user, package=package)
        return JsonResponse(rendered)

    delete = post
