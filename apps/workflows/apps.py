"""Operations across apps (the reconcile tick, …): the layer above builds, repos, packages."""

from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "apps.workflows"

    def ready(self) -> None:
        # Registers this app's actors with the broker, so a send by name finds them in every
        # process (apps.core.queue.send_on_commit); no other app imports this module.
        from apps.workflows import actors  # noqa: F401
