"""/api_3 routes: every path answers with and without its trailing slash, never redirecting."""

from django.urls import re_path

from apps.api.v3 import builds, general, packages, project_chroots, projects
from apps.api.v3.base import CoprView
from apps.core.errors import NotFound

NAME = r"[^/]+"
OWNER_PROJECT = rf"(?P<ownername>{NAME})/(?P<projectname>{NAME})"
BUILD_ID = r"(?P<build_id>\d+)"


class UnknownEndpoint(CoprView):
    def get(self, request, **kwargs):
        raise NotFound("Such API endpoint doesn't exist")

    post = put = patch = delete = get


def route(pattern: str, view, name: str | None = None):
    # `/?$`: Copr ignores a trailing slash, and APPEND_SLASH could not redirect a POST.
    return re_path(rf"^{pattern}/?$", view.as_view(), name=name)


urlpatterns = [
    re_path(r"^$", general.Home.as_view(), name="v3-home"),
    route("auth-check", general.AuthCheck, "v3-auth-check"),
    route("api-token", general.ApiToken, "v3-api-token"),
    # projects
    route("project", projects.ProjectGet, "v3-project"),
    route("project/list", projects.ProjectList, "v3-project-list"),
    route("project/search", projects.ProjectSearch, "v3-project-search"),
    route(rf"project/add/(?P<ownername>{NAME})", projects.ProjectAdd, "v3-project-add"),
    route(f"project/edit/{OWNER_PROJECT}", projects.ProjectEdit, "v3-project-edit"),
    route(f"project/fork/{OWNER_PROJECT}", projects.ProjectFork, "v3-project-fork"),
    route(f"project/delete/{OWNER_PROJECT}", projects.ProjectDelete, "v3-project-delete"),
    route(f"project/regenerate-repos/{OWNER_PROJECT}", projects.ProjectRegenerateRepos),
    route(
        rf"project/permissions/can_build_in/(?P<who>{NAME})/{OWNER_PROJECT}",
        projects.PermissionsCanBuildIn,
    ),
    route(f"project/permissions/get/{OWNER_PROJECT}", projects.PermissionsGet),
    route(f"project/permissions/set/{OWNER_PROJECT}", projects.PermissionsSet),
    route(f"project/permissions/request/{OWNER_PROJECT}", projects.PermissionsRequest),
    # project chroots
    route("project-chroot", project_chroots.ProjectChrootGet, "v3-project-chroot"),
    route("project-chroot/build-config", project_chroots.ProjectChrootBuildConfig),
    route(
        rf"project-chroot/edit/{OWNER_PROJECT}/(?P<chrootname>{NAME})",
        project_chroots.ProjectChrootEdit,
    ),
    # builds
    route(f"build/{BUILD_ID}", builds.BuildGet, "v3-build"),
    route("build/list", builds.BuildList, "v3-build-list"),
    route(f"build/source-chroot/{BUILD_ID}", builds.BuildSourceChroot),
    route(f"build/source-build-config/{BUILD_ID}", builds.BuildSourceBuildConfig),
    route(f"build/built-packages/{BUILD_ID}", builds.BuildBuiltPackages),
    route(f"build/cancel/{BUILD_ID}", builds.BuildCancel),
    route("build/check-before-build", builds.CheckBeforeBuild),
    route("build/create/url", builds.BuildCreateUrl),
    route("build/create/upload", builds.BuildCreateUpload, "v3-build-create-upload"),
    route("build/create/rpm-upload", builds.BuildCreateRpmUpload, "v3-build-create-rpm-upload"),
    route(
        rf"build/create/(?P<source_type>{'|'.join(builds.SOURCE_BUILD_TYPES)})",
        builds.BuildCreateFromSource,
    ),
    route("build/delete/list", builds.BuildDeleteList),
    route(f"build/delete/{BUILD_ID}", builds.BuildDelete),
    # build chroots (the path forms are Copr's deprecated spellings)
    route("build-chroot", builds.BuildChrootGet),
    route(rf"build-chroot/{BUILD_ID}/(?P<chrootname>{NAME})", builds.BuildChrootGet),
    route("build-chroot/list", builds.BuildChrootList),
    route(f"build-chroot/list/{BUILD_ID}", builds.BuildChrootList),
    route("build-chroot/build-config", builds.BuildChrootBuildConfig),
    route(
        rf"build-chroot/build-config/{BUILD_ID}/(?P<chrootname>{NAME})",
        builds.BuildChrootBuildConfig,
    ),
    route("build-chroot/built-packages", builds.BuildChrootBuiltPackages),
    # packages
    route("package", packages.PackageGet, "v3-package"),
    route("package/list", packages.PackageList),
    route(
        rf"package/add/{OWNER_PROJECT}/(?P<package_name>{NAME})/(?P<source_type_text>{NAME})",
        packages.PackageAdd,
    ),
    route(
        rf"package/edit/{OWNER_PROJECT}/(?P<package_name>{NAME})(?:/(?P<source_type_text>{NAME}))?",
        packages.PackageEdit,
    ),
    route("package/reset", packages.PackageReset),
    route("package/build", packages.PackageBuild),
    route("package/delete", packages.PackageDelete),
    # misc
    route("mock-chroots/list", general.MockChrootList),
    route("monitor", general.Monitor),
    route(f"webhook/generate/{OWNER_PROJECT}", general.WebhookGenerate),
    route(
        rf"rpmrepo/(?P<ownername>{NAME})/(?P<dirname>{NAME})/(?P<name_release>{NAME})",
        general.RpmRepo,
    ),
    re_path(r"^.*$", UnknownEndpoint.as_view()),
]
