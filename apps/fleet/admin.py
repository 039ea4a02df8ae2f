"""Operator console for builder pools and builders."""

from django.contrib import admin, messages

from apps.fleet.models import Builder, BuilderPool, PoolKind
from apps.fleet.services import PoolConfigError, builder_drain, builder_resume, ssh_pool_sync


class BuilderInline(admin.TabularInline):
    model = Builder
    extra = 0


@admin.register(BuilderPool)
class BuilderPoolAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "arches", "enabled", "max_builders")
    list_filter = ("kind", "enabled")
    search_fields = ("name",)
    inlines = [BuilderInline]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if obj.kind == PoolKind.SSH:
            try:
                builders = ssh_pool_sync(pool=obj)
            except PoolConfigError as error:
                messages.error(request, str(error))
            else:
                messages.success(request, f"{len(builders)} SSH builder(s) in pool {obj.name}.")


@admin.register(Builder)
class BuilderAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "pool",
        "hostname",
        "arches",
        "slots",
        "state",
        "state_reason",
        "runner_version",
        "last_seen_on",
    )
    list_select_related = ("pool",)
    list_filter = ("state", "pool")
    search_fields = ("name", "hostname")
    raw_id_fields = ("pool",)
    actions = ["drain", "resume"]

    @admin.action(description="Drain the selected builders (finish running builds, take no new)")
    def drain(self, request, queryset):
        count = builder_drain(builder_ids=list(queryset.values_list("pk", flat=True)))
        messages.success(request, f"Draining {count} builder(s).")

    @admin.action(description="Put the selected builders back in service")
    def resume(self, request, queryset):
        count = builder_resume(builder_ids=list(queryset.values_list("pk", flat=True)))
        messages.success(request, f"Resumed {count} builder(s).")
