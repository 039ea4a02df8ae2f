"""HTTP shapes only: /api/v1 (native) and /api_3 (Copr compatible)."""

from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "apps.api"
