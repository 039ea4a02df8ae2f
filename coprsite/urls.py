"""URL map: the portal, the operator console and the APIs."""

from django.contrib import admin
from django.urls import include, path, re_path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("apps.api.v1.urls")),
    path("webhooks/", include("apps.api.webhooks.urls")),
    path("backend/", include("apps.api.backend.urls")),
    re_path(r"^api_3(?:/|$)", include("apps.api.v3.urls")),
    path("", include("apps.api.v3.web_links")),
    path("", include("apps.accounts.urls")),
    path("", include("apps.site.urls")),
    path("", include("apps.site.urls_status")),
    path("", include("apps.repos.urls")),
    path("", include("apps.site.urls_projects")),
    path("", include("apps.site.urls_copr")),
    path("", include("apps.builds.urls")),
    path("", include("apps.site.urls_packages")),
]
