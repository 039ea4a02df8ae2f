"""Builds, their per-chroot tasks, batches, scheduling and logs."""

from django.apps import AppConfig


class BuildsConfig(AppConfig):
    name = "apps.builds"

    def ready(self) -> None:
        # Registers this app's actors with the broker, so a send by name finds them in every
        # process (apps.core.queue.send_on_commit); no other app imports this module.
        from apps.builds import actors  # noqa: F401
