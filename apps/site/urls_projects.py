"""URLs of the project pages: Copr's `/coprs/<owner>/…`, groups as `/coprs/g/<group>/…`."""

from django.urls import path

import apps.core.converters  # noqa: F401 (registers the owner and project converters)
from apps.site import views_projects as views

PROJECT = "coprs/<owner:owner>/<project:project>"

# An owner's list comes before a project's page: `/coprs/g/packagers/` is the @group.
urlpatterns = [
    path("coprs/", views.project_list, name="project-list"),
    path("projects/new/", views.project_new, name="project-new"),
    path("coprs/<owner:owner>/", views.owner_projects, name="owner-projects"),
    path(f"{PROJECT}/", views.project_detail, name="project-detail"),
    path(f"{PROJECT}/edit/", views.project_settings, name="project-settings"),
    path(f"{PROJECT}/delete/", views.project_remove, name="project-delete"),
    path(f"{PROJECT}/permissions/", views.project_permissions, name="project-permissions"),
    path(
        f"{PROJECT}/chroot/<str:chroot>/edit/",
        views.project_chroot_settings,
        name="project-chroot-settings",
    ),
    path(f"{PROJECT}/fork/", views.project_fork_view, name="project-fork"),
    path(f"{PROJECT}/createrepo/", views.project_regenerate_view, name="project-regenerate"),
    path(f"{PROJECT}/integrations/", views.project_integrations, name="project-integrations"),
]
