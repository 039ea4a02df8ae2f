"""The site's own pages (home, search, status, RSS, user pages) and its request guards."""

from django.apps import AppConfig


class SiteConfig(AppConfig):
    name = "apps.site"
    label = "site"
