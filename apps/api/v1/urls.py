"""/api/v1/ routes."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.api.v1 import views

urlpatterns = [
    path("auth-check", views.auth_check, name="v1-auth-check"),
    path("schema/", SpectacularAPIView.as_view(), name="v1-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="v1-schema"), name="v1-docs"),
]
