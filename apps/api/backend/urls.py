"""/backend/ routes: with or without the trailing slash (the backend always adds one)."""

from django.urls import re_path

from apps.api.backend import views

urlpatterns = [
    re_path(r"^pending-jobs/?$", views.pending_jobs, name="backend-pending-jobs"),
    re_path(r"^pending-actions/?$", views.pending_actions, name="backend-pending-actions"),
    re_path(
        r"^get-build-task/(?P<build_id>\d+)-(?P<chroot_name>[^/]+)/?$",
        views.get_build_task,
        name="backend-get-build-task",
    ),
]
