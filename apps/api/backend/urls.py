"""/backend/ routes: with or without the trailing slash (the backend always adds one)."""

from django.urls import re_path

from apps.api.backend import views

urlpatterns = [
    re_path(r"^pending-jobs/?$", views.pending_jobs, name="backend-pending-jobs"),
    re_path(r"^pending-actions/?$", views.pending_actions, name="backend-pending-actions"),
    re_path(r"^pending-action/?$", views.pending_action, name="backend-pending-action"),
    re_path(
        r"^pending-action-count/?$",
        views.pending_action_count,
        name="backend-pending-action-count",
    ),
    re_path(r"^action/(?P<action_id>\d+)/?$", views.action_detail, name="backend-action"),
    re_path(
        r"^get-build-task/(?P<build_id>\d+)-(?P<chroot_name>[^/]+)/?$",
        views.get_build_task,
        name="backend-get-build-task",
    ),
]
