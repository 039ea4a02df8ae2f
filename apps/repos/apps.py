"""Published repositories: signing keys, createrepo, .repo files, retention."""

from django.apps import AppConfig


class ReposConfig(AppConfig):
    name = "apps.repos"
