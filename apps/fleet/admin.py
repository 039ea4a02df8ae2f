"""Operator console for builder pools and builders: what each builder runs right now."""

from collections import Counter

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince

from apps.core.admin import ReadOnlyAdmin
from apps.core.errors import ServiceError
from apps.core.queue import send_on_commit
from apps.fleet.models import Builder, BuilderPool, BuilderStateChange, Machine, PoolChange
from apps.fleet.selectors import builders_with_current_tasks, slot_holding_tasks
from apps.fleet.services import (
    POOL_FIELDS,
    PoolConfigError,
    builder_drain,
    builder_resume,
    builder_state_set,
    config_without_secrets,
    pool_config_check,
    pool_delete,
    pool_save,
)


class SuperuserWrites:
    """Only superusers add, change or delete here: these rows decide what runs on builders.

    Staff (Copr's admins, apps/accounts/roles.py) see everything read-only.
    """

    def has_add_permission(self, request, *args):
        return request.user.is_superuser and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_delete_permission(request, obj)


class BuilderInline(SuperuserWrites, admin.TabularInline):
    model = Builder
    extra = 0


class BuilderPoolForm(forms.ModelForm):
    """Refuses a config its pool kind cannot use, naming the entry, before anything is saved."""

    class Meta:
        model = BuilderPool
        fields = POOL_FIELDS  # everything a pool is, each change logged by pool_save

    def clean_tags(self):
        return self.cleaned_data.get("tags") or []  # an empty field: no tags

    def clean(self):
        cleaned = super().clean()
        pool = BuilderPool(
            name=cleaned.get("name", ""),
            kind=cleaned.get("kind"),
            arches=cleaned.get("arches") or [],
            config=cleaned.get("config"),
            tags=cleaned.get("tags") or [],
        )
        try:
            pool_config_check(pool)
        except PoolConfigError as error:
            field = "tags" if "tags is" in str(error) else "config"
            raise forms.ValidationError({field: str(error)}) from error
        return cleaned


HISTORY_SHOWN = 10


def changed_fields(change: PoolChange) -> str:
    # In the form's order: PostgreSQL's jsonb keeps the keys of `changes` in its own.
    return ", ".join(field for field in POOL_FIELDS if field in change.changes)


@admin.register(BuilderPool)
class BuilderPoolAdmin(SuperuserWrites, admin.ModelAdmin):
    list_display = (
        "name",
        "kind",
        "arch_list",
        "enabled",
        "max_builders",
        "builder_states",
        "activity",
    )
    list_filter = ("kind", "enabled")
    search_fields = ("name",)
    inlines = [BuilderInline]

    def get_queryset(self, request):
        builders = Prefetch("builders", queryset=builders_with_current_tasks())
        return super().get_queryset(request).prefetch_related(builders)

    @admin.display(description="arches")
    def arch_list(self, pool):
        return ", ".join(pool.served_arches)

    @admin.display(description="builders")
    def builder_states(self, pool):
        states = Counter(builder.state for builder in pool.builders.all())
        return ", ".join(f"{count} {state}" for state, count in sorted(states.items())) or "none"

    @admin.display(description="slots in use")
    def activity(self, pool):
        builders = pool.builders.all()
        busy = sum(len(builder.current) for builder in builders)
        return f"{busy} of {sum(builder.slots for builder in builders)}"

    form = BuilderPoolForm

    def get_fields(self, request, obj=None):
        fields = list(BuilderPoolForm.Meta.fields)
        if not request.user.is_superuser:
            fields = ["config_shown" if field == "config" else field for field in fields]
        return fields + ["history"] if obj else fields

    def get_readonly_fields(self, request, obj=None):
        return ("history",) if request.user.is_superuser else ("config_shown", "history")

    @admin.display(description="changes")
    def history(self, pool):
        """The pool's latest changes, who made them, and a link to all of them."""
        changes = pool.changes.select_related("user")[:HISTORY_SHOWN]
        url = reverse("admin:fleet_poolchange_changelist") + f"?pool_name={pool.name}"
        lines = format_html_join(
            "",
            "<li>{} · {} by {}: {}</li>",
            (
                (change.changed_on.strftime("%Y-%m-%d %H:%M"), change.action,
                 change.user or "coprsite", changed_fields(change) or "—")
                for change in changes
            ),
        )  # fmt: skip
        return format_html('<ul>{}</ul><a href="{}">All changes of this pool</a>', lines, url)

    @admin.display(description="config")
    def config_shown(self, pool):
        return config_without_secrets(pool.config)

    def save_model(self, request, obj, form, change):
        try:
            builders = pool_save(pool=obj, user=request.user)  # the form checked the config
        except ServiceError as error:
            raise PermissionDenied(error.message) from error
        messages.success(request, f"{len(builders)} builder(s) in pool {obj.name}.")

    def delete_model(self, request, obj):
        try:
            pool_delete(pool=obj, user=request.user)
        except ServiceError as error:
            raise PermissionDenied(error.message) from error

    def delete_queryset(self, request, queryset):
        for pool in queryset:
            self.delete_model(request, pool)


@admin.register(PoolChange)
class PoolChangeAdmin(admin.ModelAdmin):
    """Every add, change and delete of a pool, by whom: written by the fleet services only."""

    list_display = ("changed_on", "pool_name", "action", "user", "changes")
    list_select_related = ("user",)
    list_filter = ("action", "pool_name")
    search_fields = ("pool_name", "user__username")
    readonly_fields = ("changed_on", "pool", "pool_name", "action", "user", "changes")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class BuilderStateChangeInline(admin.TabularInline):
    """The builder's state history, newest first: written by the fleet's services only."""

    model = BuilderStateChange
    fields = ("changed_on", "previous_state", "state", "reason")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    verbose_name_plural = "state history"

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-changed_on", "-pk")


@admin.register(Builder)
class BuilderAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "pool",
        "kind",
        "state",
        "state_reason",
        "activity",
        "running",
        "seen",
        "arch_list",
        "runner_version",
    )
    list_select_related = ("pool",)
    list_filter = ("state", "pool")
    search_fields = ("name", "hostname")
    raw_id_fields = ("pool",)
    readonly_fields = (
        "activity",
        "running",
        "seen",
        "last_seen_on",
        "state_reason",
        "runner_version",
    )
    fields = (
        "name",
        "pool",
        "hostname",
        "arches",
        "slots",
        "state",
        "state_reason",
        "runner_version",
        "activity",
        "running",
        "seen",
    )
    actions = ["drain", "resume"]
    inlines = [BuilderStateChangeInline]

    def has_add_permission(self, request):
        return request.user.is_superuser and super().has_add_permission(request)

    def save_model(self, request, obj, form, change):
        """A state set in the form goes through builder_state_set, to be remembered."""
        new_state = obj.state
        if change and "state" in form.changed_data:
            obj.state = form.initial["state"]
        super().save_model(request, obj, form, change)
        if change and "state" in form.changed_data:
            builder_state_set(
                builders=Builder.objects.filter(pk=obj.pk),
                state=new_state,
                reason=f"set to {new_state} by {request.user.username}",
            )

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_delete_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return self.readonly_fields
        # Staff take a builder out of service and back (its state); where it is and what it
        # serves follow from its pool's config.
        return tuple(field for field in self.fields if field != "state")

    def get_queryset(self, request):
        tasks = Prefetch("tasks", queryset=slot_holding_tasks(), to_attr="current")
        return super().get_queryset(request).prefetch_related(tasks)

    @admin.display(description="kind", ordering="pool__kind")
    def kind(self, builder):
        return builder.pool.kind

    @admin.display(description="slots in use")
    def activity(self, builder):
        busy = len(builder.current)
        return f"{busy} of {builder.slots} busy" if busy else f"idle ({builder.slots} free)"

    @admin.display(description="current tasks")
    def running(self, builder):
        if not builder.current:
            return "—"
        return format_html_join(
            ", ",
            '<a href="{}">{}</a> <span class="state">{}</span>',
            (
                (reverse("admin:builds_buildtask_change", args=[task.pk]), task.task_id, task.state)
                for task in builder.current
            ),
        )

    @admin.display(description="arches")
    def arch_list(self, builder):
        return ", ".join(builder.arches)

    @admin.display(description="last seen", ordering="last_seen_on")
    def seen(self, builder):
        seconds = int((timezone.now() - builder.last_seen_on).total_seconds())
        ago = f"{seconds} s" if seconds < 60 else timesince(builder.last_seen_on, timezone.now())
        return format_html(
            '<time datetime="{}">{} ago</time>', builder.last_seen_on.isoformat(), ago
        )

    @admin.action(description="Drain the selected builders (finish running builds, take no new)")
    def drain(self, request, queryset):
        builder_ids = list(queryset.values_list("pk", flat=True))
        count = builder_drain(builder_ids=builder_ids, user=request.user)
        messages.success(request, f"Draining {count} builder(s).")

    @admin.action(description="Put the selected builders back in service")
    def resume(self, request, queryset):
        builder_ids = list(queryset.values_list("pk", flat=True))
        count = builder_resume(builder_ids=builder_ids, user=request.user)
        messages.success(request, f"Resumed {count} builder(s).")


@admin.register(BuilderStateChange)
class BuilderStateChangeAdmin(ReadOnlyAdmin):
    """Every builder's state changes, newest first: written by the fleet's services only."""

    list_display = ("changed_on", "builder", "previous_state", "state", "reason")
    list_select_related = ("builder",)
    list_filter = ("state", "builder__pool")
    search_fields = ("builder__name", "reason")


@admin.register(Machine)
class MachineAdmin(admin.ModelAdmin):
    """Disposable machines of vm and command pools that exist now (or failed to go)."""

    list_display = (
        "name",
        "pool",
        "task_id",
        "attempt",
        "state",
        "owner_key",
        "builds",
        "address",
        "kept_for",
        "kept_until",
        "state_reason",
    )
    list_filter = ("state", "pool")
    search_fields = ("name", "address")
    readonly_fields = [field.name for field in Machine._meta.fields]
    actions = ["delete_machines_now"]

    def has_add_permission(self, request):
        return False  # machines come from their pool's `new`, never from a form

    def has_delete_permission(self, request, obj=None):
        # Deleting the row would forget the machine, not delete it: reconcile could not either.
        return request.user.is_superuser and super().has_delete_permission(request, obj)

    @admin.action(description="Run the pool's delete for the selected machines now")
    def delete_machines_now(self, request, queryset):
        for machine_id in queryset.values_list("pk", flat=True):
            send_on_commit("delete_machine", machine_id)
        messages.success(request, f"Deleting {queryset.count()} machine(s).")
