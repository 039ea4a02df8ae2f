"""URLs of published repositories: .repo files and the /results/ tree."""

from django.urls import path

from apps.core.static_results import serve_results
from apps.repos import views

urlpatterns = [
    path("dnf/copr-hub.conf", views.hub_config, name="hub-config"),
    path(
        "coprs/g/<str:group>/<str:project>/repo/<str:name_release>/",
        views.group_repo_file,
        name="group-repo-file",
    ),
    path(
        "coprs/g/<str:group>/<str:project>/repo/<str:name_release>/<str:repofile>",
        views.group_repo_file,
    ),
    path(
        "coprs/<str:owner>/<str:project>/repo/<str:name_release>/",
        views.repo_file,
        name="repo-file",
    ),
    path(
        "coprs/<str:owner>/<str:project>/repo/<str:name_release>/<str:repofile>",
        views.repo_file,
    ),
    path("results/", serve_results, name="results"),
    path("results/<path:path>", serve_results, name="results"),
]
