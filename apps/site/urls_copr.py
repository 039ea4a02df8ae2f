"""Copr's URLs for project pages that have no place in the main scheme (see views_copr)."""

from django.urls import path

import apps.core.converters  # noqa: F401 (registers the owner and project converters)
from apps.site import views_copr

PROJECT = "coprs/<owner:owner>/<project:project>"

urlpatterns = [
    path(f"{PROJECT}/monitor/", views_copr.project_monitor, name="project-monitor"),
    path(
        f"{PROJECT}/monitor/<str:variant>/",
        views_copr.project_monitor,
        name="project-monitor-variant",
    ),
    path(f"{PROJECT}/repositories/", views_copr.project_repositories, name="project-repositories"),
    path("groups/g/<str:group>/coprs/", views_copr.group_projects, name="group-projects"),
]
