"""Builder pools and machines as data."""

from django.apps import AppConfig


class FleetConfig(AppConfig):
    name = "apps.fleet"

    def ready(self) -> None:
        # Registers this app's actors with the broker, so a send by name finds them in every
        # process (apps.core.queue.send_on_commit); no other app imports this module.
        from apps.fleet import actors  # noqa: F401
