"""Operator console for packages, dist-git instances and webhook history."""

from django.contrib import admin

from apps.packages.models import DistGitInstance, Package, WebhookHistory


@admin.register(Package)
class PackageAdmin(admin.ModelAdmin):
    list_display = ("name", "project", "source_type", "webhook_rebuild")
    list_select_related = ("project__owner_user", "project__owner_group")
    list_filter = ("source_type", "webhook_rebuild")
    search_fields = ("name", "project__name")
    raw_id_fields = ("project",)


@admin.register(DistGitInstance)
class DistGitInstanceAdmin(admin.ModelAdmin):
    list_display = ("name", "clone_url", "priority")
    search_fields = ("name",)


@admin.register(WebhookHistory)
class WebhookHistoryAdmin(admin.ModelAdmin):
    list_display = ("created_on", "project", "provider", "event", "webhook_uuid")
    list_select_related = ("project__owner_user", "project__owner_group")
    list_filter = ("provider",)
    search_fields = ("project__name", "webhook_uuid")
    raw_id_fields = ("project",)
