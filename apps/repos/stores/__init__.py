"""Where published repositories are kept: one module per store behind one interface
(base.RepositoryStore), chosen per instance by REPOSITORY_STORE."""

from django.conf import settings

from apps.repos.stores.base import RepositoryStore


def configured_store() -> RepositoryStore:
    """The store this instance publishes into (settings.REPOSITORY_STORE)."""
    # Imported here: an instance on the filesystem store never loads pulp-glue.
    if settings.REPOSITORY_STORE == "pulp":
        from apps.repos.stores.pulp import PulpStore

        return PulpStore()
    from apps.repos.stores.filesystem import FilesystemStore

    return FilesystemStore()
