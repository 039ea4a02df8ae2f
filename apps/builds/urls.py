"""URLs of the build pages; `build-detail` takes the build id alone (copr-cli links use it)."""

from django.urls import path

import apps.core.converters  # noqa: F401 (registers the owner and project converters)
from apps.builds import views

PROJECT = "coprs/<owner:owner>/<project:project>"

urlpatterns = [
    path("builds/<int:build_id>/", views.build_detail, name="build-detail"),
    path("builds/<int:build_id>/state.json", views.build_state, name="build-state"),
    path("builds/<int:build_id>/cancel/", views.build_cancel_view, name="build-cancel"),
    path("builds/<int:build_id>/delete/", views.build_delete_view, name="build-delete"),
    path("builds/<int:build_id>/resubmit/", views.build_resubmit_view, name="build-resubmit"),
    path(
        "builds/<int:build_id>/resubmit-ssh/",
        views.build_resubmit_view,
        {"ssh": True},
        name="build-resubmit-ssh",
    ),
    path(
        "builds/<int:build_id>/ssh/destroy/", views.build_ssh_destroy_view, name="build-ssh-destroy"
    ),
    path("builds/<int:build_id>/live/<int:task_id>/", views.build_live_log, name="build-live-log"),
    path(f"{PROJECT}/builds/", views.build_list, name="build-list"),
    path(f"{PROJECT}/builds/delete/", views.build_delete_many_view, name="build-delete-many"),
    path(f"{PROJECT}/build/<int:build_id>/", views.build_detail, name="project-build-detail"),
    # The backend's way to an upload when it runs on another host (apps/builds/upload_links.py).
    path("internal/uploads/<str:token>/", views.upload_fetch, name="upload-fetch"),
    path("internal/uploads/<str:token>/release/", views.upload_release, name="upload-release"),
    path(f"{PROJECT}/add_build/", views.build_new, name="build-new"),
    path(f"{PROJECT}/add_build/<str:source_type>/", views.build_new, name="build-new-type"),
]
