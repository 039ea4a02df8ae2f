"""Packages, their source methods, and the webhook history."""

from django.apps import AppConfig


class PackagesConfig(AppConfig):
    name = "apps.packages"
    source_methods: dict = {}

    def ready(self) -> None:
        # The source methods' registry, for the models module: the methods' modules import
        # the models, so the models read the registry here instead of importing it.
        from apps.packages.sources import METHODS

        self.source_methods = METHODS
