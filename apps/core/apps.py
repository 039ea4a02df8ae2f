"""Small shared pieces used by every app."""

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"

    def ready(self) -> None:
        from apps.core import lookups  # noqa: F401  (registers `in_array` on integer fields)
