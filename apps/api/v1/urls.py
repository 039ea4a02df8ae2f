"""/api/v1/ routes; owners are `alice` or `@group`, as in Copr."""

from csp.constants import SELF
from csp.decorators import csp_update
from django.urls import include, path, re_path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from apps.api.v1 import views
from apps.api.v1.schema import SCHEMA_SETTINGS

PROJECT = "projects/<str:owner>/<str:name>"
# The docs pages are HTML for GET; DRF's OPTIONS answer would need a template they lack.
PAGE_METHODS = ["get", "head"]

endpoints = [
    path("auth-check", views.AuthCheck.as_view(), name="v1-auth-check"),
    path("projects", views.ProjectList.as_view(), name="v1-projects"),
    path(PROJECT, views.ProjectDetail.as_view(), name="v1-project"),
    path(f"{PROJECT}/chroots", views.ProjectChrootList.as_view(), name="v1-project-chroots"),
    path(f"{PROJECT}/builds", views.ProjectBuildList.as_view(), name="v1-project-builds"),
    path("builds", views.BuildList.as_view(), name="v1-builds"),
    path("builds/<int:build_id>", views.BuildDetail.as_view(), name="v1-build"),
    path("builds/<int:build_id>/tasks", views.BuildTaskList.as_view(), name="v1-build-tasks"),
    path("builds/<int:build_id>/resubmit", views.BuildResubmit.as_view(), name="v1-build-resubmit"),
    path("builds/<int:build_id>/ssh", views.BuildSshAccess.as_view(), name="v1-build-ssh"),
    path("tasks/<int:task_id>", views.TaskDetail.as_view(), name="v1-task"),
]

urlpatterns = [
    *endpoints,
    # The schema describes this API only, not the Copr-compatible one or the portal.
    path(
        "schema/",
        SpectacularAPIView.as_view(
            urlconf=[path("api/v1/", include(endpoints))], custom_settings=SCHEMA_SETTINGS
        ),
        name="v1-schema",
    ),
    # Split: the page and its start-up script come from separate requests, so the page runs
    # under a Content-Security-Policy without inline scripts.
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="v1-schema",
            template_name="api/swagger_ui.html",
            http_method_names=PAGE_METHODS,
        ),
        name="v1-docs",
    ),
    # Redoc runs its search in a Web Worker it makes from a blob: URL.
    path(
        "redoc/",
        csp_update({"worker-src": [SELF, "blob:"]})(
            SpectacularRedocView.as_view(
                url_name="v1-schema", template_name="api/redoc.html", http_method_names=PAGE_METHODS
            )
        ),
        name="v1-redoc",
    ),
    re_path(r"^(?P<path>.*)$", views.UnknownEndpoint.as_view()),
]
