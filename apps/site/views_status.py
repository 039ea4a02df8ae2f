"""Copr's status subpages (`/status/pending/`, `running`, …), the builders page, and the
`/rss/` feed of new projects. `/status/` itself stays the queue overview with the chart."""

from django.db.models import Q
from django.shortcuts import render
from django.views.decorators.http import require_safe

from apps.builds import selectors
from apps.builds.models import State
from apps.fleet.selectors import pools_with_builders
from apps.projects.models import Project
from apps.projects.pages import page_by_ids
from apps.projects.selectors import project_rows
from apps.site.chart import builds_chart

TASKS_PER_PAGE = 100
RSS_DEFAULT_LIMIT = 200  # Copr's default for /rss/
RSS_MAX_LIMIT = 1000
STATS_DAYS = 30
TASK_PAGES = {
    # page name: (states listed, only source tasks, heading, what the page tells)
    "pending": ((State.PENDING,), None, "Pending tasks", "waiting for a free builder"),
    "starting": ((State.STARTING,), None, "Starting tasks", "getting a builder"),
    "running": ((State.RUNNING,), None, "Running tasks", "building now"),
    # No dist-git here: a build "imports" while its source task makes and files the SRPM.
    "importing": (
        (State.RUNNING, State.IMPORTING),
        True,
        "Importing builds",
        "making and importing their SRPM",
    ),
}


def status_context(active: str, **context) -> dict:
    """What every status page shows: the tabs and the queue sizes, as Copr injects them."""
    return {"active": active, "counts": selectors.task_state_counts(), **context}


def task_page(request, name: str):
    states, source, heading, meaning = TASK_PAGES[name]
    # Copr's pending page lists normal builds and only counts the background ones.
    background = False if name == "pending" else None
    tasks = selectors.tasks_for_status(states, background=background, source=source)
    context = status_context(
        name,
        heading=heading,
        meaning=meaning,
        page=page_by_ids(request, tasks, TASKS_PER_PAGE, read=selectors.status_rows),
        background_count=(
            selectors.tasks_for_status(states, background=True).count()
            if name == "pending"
            else None
        ),
    )
    return render(request, "site/status_tasks.html", context)


@require_safe
def status_pending(request):
    return task_page(request, "pending")


@require_safe
def status_starting(request):
    return task_page(request, "starting")


@require_safe
def status_running(request):
    return task_page(request, "running")


@require_safe
def status_importing(request):
    return task_page(request, "importing")


@require_safe
def status_pending_all(request):
    context = status_context("pending-all", rows=selectors.queue_by_owner())
    return render(request, "site/status_pending_all.html", context)


@require_safe
def status_batches(request):
    context = status_context("batches", batches=selectors.unfinished_batches())
    return render(request, "site/status_batches.html", context)


@require_safe
def status_stats(request):
    days = selectors.builds_per_day(days=STATS_DAYS)
    context = status_context(
        "stats",
        chart=builds_chart(days),
        stats_days=STATS_DAYS,
        per_chroot=selectors.tasks_per_chroot(days=STATS_DAYS),
        submitters=selectors.active_submitters(days=STATS_DAYS),
    )
    return render(request, "site/status_stats.html", context)


@require_safe
def status_builders(request):
    """Each pool and builder: kind, arches, state, slots in use, runner, last seen, tasks.

    Public, so it shows nothing of a pool's config (addresses, key paths, commands). Why
    a builder is down may quote them (an SSH error names the host and the key), so the
    reason is shown to operators only.
    """
    context = status_context(
        "builders", pools=pools_with_builders(), show_reasons=request.user.is_staff
    )
    return render(request, "site/status_builders.html", context)


@require_safe
def rss(request, limit: int = RSS_DEFAULT_LIMIT, everything: bool = False):
    """New projects, newest first: listed, non-temporary ones (Copr's `/rss/[<limit>/]`);
    `/rss/all/` lists every project."""
    projects = Project.objects.order_by("-id")
    if not everything:
        projects = projects.listed().filter(Q(delete_after__isnull=True))
    rows = project_rows(
        projects[: min(limit, RSS_MAX_LIMIT)], with_chroots=False, columns=("created_on",)
    )
    context = {"projects": rows}
    return render(request, "site/rss.xml", context, content_type="text/xml; charset=utf-8")
