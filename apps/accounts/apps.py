"""Users, owner groups and API tokens."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
