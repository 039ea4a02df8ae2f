"""URLs of the package pages."""

from django.urls import path

import apps.core.converters  # noqa: F401 (registers the owner and project converters)
from apps.packages import views_web

PROJECT = "coprs/<owner:owner>/<project:project>"

urlpatterns = [
    path(f"{PROJECT}/packages/", views_web.package_list, name="package-list"),
    path(f"{PROJECT}/package/<str:package>/", views_web.package_detail, name="package-detail"),
]
