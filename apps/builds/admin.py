"""Operator console for builds, build tasks and batches."""

from django.contrib import admin

from apps.builds.models import Batch, Build, BuildTask


class BuildTaskInline(admin.TabularInline):
    model = BuildTask
    fields = ("chroot", "state", "state_reason", "builder", "started_on", "ended_on")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Build)
class BuildAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "project",
        "package_name",
        "package_version",
        "state",
        "submitter",
        "submitted_on",
        "is_background",
    )
    list_select_related = ("project__owner_user", "project__owner_group", "submitter")
    list_filter = ("state", "source_type", "is_background")
    search_fields = ("=id", "package_name", "project__name", "submitter__username")
    raw_id_fields = ("project", "package", "submitter", "batch")
    date_hierarchy = "submitted_on"
    inlines = [BuildTaskInline]
    show_full_result_count = False  # COUNT(*) over millions of builds is slow


@admin.register(BuildTask)
class BuildTaskAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "build",
        "chroot",
        "state",
        "priority",
        "builder",
        "started_on",
        "ended_on",
        "state_reason",
    )
    list_select_related = ("build", "chroot", "builder")
    list_filter = ("state", "priority", "chroot__arch", "chroot")
    search_fields = ("=build__id", "build__package_name", "owner_key")
    raw_id_fields = ("build", "chroot", "builder")
    show_full_result_count = False


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = ("id", "blocked_by", "created_on")
    raw_id_fields = ("blocked_by",)
