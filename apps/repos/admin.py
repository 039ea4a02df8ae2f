"""Operator console for signing keys and published repositories."""

from django.contrib import admin

from apps.repos.models import Repository, SigningKey


@admin.register(SigningKey)
class SigningKeyAdmin(admin.ModelAdmin):
    list_display = ("project", "state", "fingerprint", "created_on")
    list_select_related = ("project__owner_user", "project__owner_group")
    list_filter = ("state",)
    search_fields = ("project__name", "fingerprint")
    raw_id_fields = ("project",)
    readonly_fields = ("fingerprint", "uid", "public_key", "created_on")


@admin.register(Repository)
class RepositoryAdmin(admin.ModelAdmin):
    list_display = (
        "project",
        "project_dirname",
        "chroot",
        "requested_serial",
        "published_serial",
        "runs",
        "package_count",
        "last_run_on",
    )
    list_select_related = ("project__owner_user", "project__owner_group", "chroot")
    list_filter = ("chroot__arch", "chroot")
    search_fields = ("project__name", "project_dirname")
    raw_id_fields = ("project", "chroot")
