"""Builds, their per-chroot tasks, batches, scheduling and logs."""

from django.apps import AppConfig


class BuildsConfig(AppConfig):
    name = "apps.builds"
