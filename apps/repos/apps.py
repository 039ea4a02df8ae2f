"""Published repositories: signing keys, createrepo, .repo files, retention."""

from django.apps import AppConfig


class ReposConfig(AppConfig):
    name = "apps.repos"

    def ready(self) -> None:
        # Registers this app's actors with the broker, so a send by name finds them in every
        # process (apps.core.queue.send_on_commit); no other app imports this module.
        from apps.repos import actors  # noqa: F401
