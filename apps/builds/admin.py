"""Operator console for builds, build tasks and batches.

States, sources and results are read-only here: a state typed by hand would break the
state machine. Changes go through actions that call the services (cancel, requeue, delete).
"""

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from apps.builds.models import Batch, Build, BuildTask, TaskAttempt
from apps.builds.services import build_cancel, build_delete, tasks_requeue
from apps.builds.views import task_row
from apps.core.admin import ReadOnlyAdmin
from apps.core.errors import ServiceError


def result_links(task: BuildTask) -> str:
    """builder-live.log, backend.log and the results directory of a started task."""
    row = task_row(task.build, task)
    if row["results_url"] is None:
        return "not started"
    # A finished task's logs are gzipped: the link names the file it leads to.
    logs = [row["live_log_url"], row["backend_log_url"]]
    links = [(url, url.rsplit("/", 1)[-1]) for url in logs] + [(row["results_url"], "results")]
    return format_html_join(" · ", '<a href="{}">{}</a>', links)


def for_each_build(request, builds, service, done: str) -> None:
    """Call a build service for each build; report how many it did and each refusal's reason."""
    count = 0
    for build in builds:
        try:
            service(user=request.user, build=build)
        except ServiceError as error:
            messages.error(request, error.message)
        else:
            count += 1
    if count:
        messages.success(request, done.format(count=count))


class BuildTaskInline(admin.TabularInline):
    model = BuildTask
    fields = ("task_link", "chroot", "state", "state_reason", "builder", "started_on", "logs")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="task")
    def task_link(self, task):
        url = reverse("admin:builds_buildtask_change", args=[task.pk])
        return format_html('<a href="{}">{}</a>', url, task.task_id)

    @admin.display(description="logs and results")
    def logs(self, task):
        return result_links(task)


@admin.register(Build)
class BuildAdmin(ReadOnlyAdmin):
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
    date_hierarchy = "submitted_on"
    inlines = [BuildTaskInline]
    readonly_fields = ("build_page",)

    class Media:
        css = {"all": ("css/admin.css",)}

    actions = ["cancel_builds", "requeue_builds", "delete_builds"]
    show_full_result_count = False  # COUNT(*) over millions of builds is slow

    @admin.display(description="build page")
    def build_page(self, build):
        url = reverse("build-detail", args=[build.pk])
        return format_html('<a href="{}">{}</a>', url, f"Build {build.pk} as users see it")

    @admin.action(description="Cancel the selected builds")
    def cancel_builds(self, request, queryset):
        for_each_build(request, queryset, build_cancel, "Canceled {count} build(s).")

    @admin.action(description="Requeue the stuck tasks of the selected builds")
    def requeue_builds(self, request, queryset):
        task_ids = list(BuildTask.objects.filter(build__in=queryset).values_list("pk", flat=True))
        count = tasks_requeue(user=request.user, task_ids=task_ids)
        messages.success(request, f"Requeued {count} task(s).")

    @admin.action(description="Delete the selected finished builds with their results")
    def delete_builds(self, request, queryset):
        builds = queryset.select_related("project__owner_user", "project__owner_group")
        for_each_build(request, builds, build_delete, "Deleted {count} build(s).")


class TaskAttemptInline(admin.TabularInline):
    """Each run of the task: its builder (kept after task.builder is cleared), how long."""

    model = TaskAttempt
    fields = (
        "number",
        "builder_name",
        "machine_name",
        "machine_wait_seconds",
        "started_on",
        "ended_on",
        "outcome",
    )
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False


@admin.register(TaskAttempt)
class TaskAttemptAdmin(ReadOnlyAdmin):
    """Each run of a task on a builder; which builder ran what, for how long."""

    list_display = (
        "task",
        "number",
        "builder_name",
        "machine_wait_seconds",
        "started_on",
        "ended_on",
        "outcome",
    )
    list_filter = ("builder_name",)
    search_fields = ("=task__id", "=task__build__id", "builder_name", "machine_name")


@admin.register(BuildTask)
class BuildTaskAdmin(ReadOnlyAdmin):
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
    readonly_fields = ("logs",)
    inlines = [TaskAttemptInline]
    actions = ["requeue_tasks"]
    show_full_result_count = False

    def get_queryset(self, request):
        related = ("build__project__owner_user", "build__project__owner_group", "chroot")
        return super().get_queryset(request).select_related(*related)

    @admin.display(description="logs and results")
    def logs(self, task):
        return result_links(task)

    @admin.action(description="Requeue the selected tasks stuck on a lost builder")
    def requeue_tasks(self, request, queryset):
        task_ids = list(queryset.values_list("pk", flat=True))
        count = tasks_requeue(user=request.user, task_ids=task_ids)
        messages.success(request, f"Requeued {count} task(s).")


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = ("id", "blocked_by", "created_on")
    raw_id_fields = ("blocked_by",)
