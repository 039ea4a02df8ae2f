"""Projects, their chroots and permissions, and the chroot catalog."""

from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "apps.projects"
