"""Small shared pieces used by every app."""

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
