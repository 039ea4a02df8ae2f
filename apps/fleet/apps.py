"""Builder pools and machines as data."""

from django.apps import AppConfig


class FleetConfig(AppConfig):
    name = "apps.fleet"
