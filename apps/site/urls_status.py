"""Copr's status subpages and RSS URLs (see views_status); `/status/` is in site.urls."""

from django.urls import path

from apps.site import views_status

urlpatterns = [
    path("status/pending/", views_status.status_pending, name="status-pending"),
    path("status/pending/all/", views_status.status_pending_all, name="status-pending-all"),
    path("status/starting/", views_status.status_starting, name="status-starting"),
    path("status/running/", views_status.status_running, name="status-running"),
    path("status/importing/", views_status.status_importing, name="status-importing"),
    path("status/batches/", views_status.status_batches, name="status-batches"),
    path("status/stats/", views_status.status_stats, name="status-stats"),
    path("status/builders/", views_status.status_builders, name="status-builders"),
    path("rss/", views_status.rss, name="rss"),
    path("rss/all/", views_status.rss, {"everything": True}, name="rss-all"),
    path("rss/<int:limit>/", views_status.rss, name="rss-limit"),
]
