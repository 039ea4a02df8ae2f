"""Users, owner groups and API tokens."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "apps.accounts"

    def ready(self):
        from apps.accounts.roles import staff_group_sync

        post_migrate.connect(staff_group_sync, dispatch_uid="accounts.staff_group_sync")
