"""URLs of the package pages (Copr's `/coprs/<owner>/<project>/package/…`)."""

from django.urls import path

import apps.core.converters  # noqa: F401 (registers the owner and project converters)
from apps.site import views_packages as views_web

PROJECT = "coprs/<owner:owner>/<project:project>"
PACKAGE = f"{PROJECT}/package/<str:package>"

# `package/new/<type>/` comes last: a package named "new" keeps its page, edit and delete.
urlpatterns = [
    path(f"{PROJECT}/packages/", views_web.package_list, name="package-list"),
    path(f"{PROJECT}/packages/new/", views_web.package_new, name="package-new"),
    path(f"{PACKAGE}/", views_web.package_detail, name="package-detail"),
    path(f"{PACKAGE}/edit/", views_web.package_edit_view, name="package-edit"),
    path(
        f"{PACKAGE}/edit/<str:source_type>/", views_web.package_edit_view, name="package-edit-type"
    ),
    path(f"{PACKAGE}/rebuild/", views_web.package_rebuild, name="package-rebuild"),
    path(f"{PACKAGE}/reset/", views_web.package_reset_view, name="package-reset"),
    path(f"{PACKAGE}/delete/", views_web.package_delete_view, name="package-delete"),
    path(
        f"{PROJECT}/package/new/<str:source_type>/", views_web.package_new, name="package-new-type"
    ),
]
