"""Operator console for projects, their chroots and permissions, and the chroot catalog."""

from django.contrib import admin, messages

from apps.projects.models import Chroot, Project, ProjectChroot, ProjectPermission
from apps.projects.services import chroot_mark_end_of_life, chroot_set_active


@admin.register(Chroot)
class ChrootAdmin(admin.ModelAdmin):
    list_display = ("name", "arch", "is_active", "end_of_life", "mock_config")
    list_filter = ("is_active", "end_of_life", "os_release", "arch")
    search_fields = ("name",)
    actions = ["activate", "deactivate", "mark_end_of_life"]

    def get_readonly_fields(self, request, obj=None):
        # mock runs its config as root on the builders, and a path names any file there:
        # which config a chroot uses is for superusers (apps/accounts/roles.py).
        return () if request.user.is_superuser else ("mock_config",)

    @admin.action(description="Activate the selected chroots")
    def activate(self, request, queryset):
        count = chroot_set_active(
            chroot_ids=list(queryset.values_list("pk", flat=True)), active=True
        )
        messages.success(request, f"Activated {count} chroot(s).")

    @admin.action(description="Deactivate the selected chroots (no new builds)")
    def deactivate(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        count = chroot_set_active(chroot_ids=ids, active=False)
        messages.success(request, f"Deactivated {count} chroot(s).")

    @admin.action(description="Mark the selected chroots end-of-life")
    def mark_end_of_life(self, request, queryset):
        count = chroot_mark_end_of_life(chroot_ids=list(queryset.values_list("pk", flat=True)))
        messages.success(request, f"Marked {count} chroot(s) end-of-life.")


class ProjectChrootInline(admin.TabularInline):
    model = ProjectChroot
    raw_id_fields = ("chroot",)
    extra = 0


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("id", "full_name", "created_on", "enable_net", "persistent", "unlisted_on_hp")
    list_select_related = ("owner_user", "owner_group")
    list_filter = ("enable_net", "persistent", "devel_mode", "unlisted_on_hp")
    # builder_tags is only set here: which builder pools may build a project is the
    # operator's call (apps/builds/scheduler.runnable_tasks).
    search_fields = ("name", "owner_user__username", "owner_group__name")
    raw_id_fields = ("owner_user", "owner_group", "created_by", "forked_from")
    inlines = [ProjectChrootInline]


@admin.register(ProjectChroot)
class ProjectChrootAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "chroot")
    list_select_related = ("project__owner_user", "project__owner_group", "chroot")
    list_filter = ("chroot__arch", "chroot__os_release")
    search_fields = ("project__name", "chroot__name")
    raw_id_fields = ("project", "chroot")


@admin.register(ProjectPermission)
class ProjectPermissionAdmin(admin.ModelAdmin):
    list_display = ("project", "user", "builder", "admin")
    list_select_related = ("project__owner_user", "project__owner_group", "user")
    list_filter = ("builder", "admin")
    search_fields = ("project__name", "user__username")
    raw_id_fields = ("project", "user")
