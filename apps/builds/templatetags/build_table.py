"""The rows of the builds table, rendered in Python: the portal's most repeated fragment.

A page shows fifty builds with their chroots; as template variables that is some 1,300
nodes to resolve and escape per page (about 30 ms of CPU on the 2-CPU VM), as one
`row_html` per row a few milliseconds. The markup stays as the template had it.
"""

from django import template
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince

from apps.builds.models import FINAL_STATES
from apps.core.rowhtml import RowLinks, row_html, row_links

register = template.Library()

ROW = (
    '<tr>{select_cell}<td><a href="{build_url}">{id}</a></td>{project_cell}<td>{package_cell}</td>'
    '<td>{version}</td><td><time datetime="{iso}" title="{title}">{ago} ago</time></td>'
    '<td>{build_time}</td><td>{by}</td><td><span class="state state-{state}">{state}</span></td>'
    "<td>{chroots}</td></tr>"
)
# Only finished builds can be deleted; the others get an empty cell.
SELECT = (
    '<td><input type="checkbox" name="build_ids" value="{id}" form="delete-builds" '
    'aria-label="Select build {id}"></td>'
)
STATUS_TASK_ROW = (
    '<tr><td><a href="{build_url}">{build_id}</a></td>'
    '<td><a href="{project_url}">{full_name}</a></td><td>{package}</td><td>{chroot}</td>'
    '<td>{by}</td><td><time datetime="{iso}">{ago}</time></td>'
    '<td><span class="state state-{state}">{state}</span></td></tr>'
)
CHROOT = '<span class="state state-{state}" title="{name}: {state}">{name}</span>'


@register.simple_tag(takes_context=True)
def build_row(context, build: dict, show_project: bool = False, selectable: bool = False) -> str:
    """One `<tr>` of a row of `apps.builds.selectors.build_rows`; `selectable` adds the
    checkbox of the bulk delete."""
    links = row_links(context)
    owner, project = build["ownername"], build["project_name"]
    submitted_on = timezone.localtime(build["submitted_on"])
    return row_html(
        ROW,
        select_cell=select_cell(build) if selectable else "",
        build_url=links.url("build-detail", build["id"]),
        id=build["id"],
        project_cell=project_cell(links, owner, project) if show_project else "",
        package_cell=package_cell(links, build),
        version=build["version"] or "—",
        iso=submitted_on.isoformat(),
        title=submitted_on.strftime("%Y-%m-%d %H:%M"),
        ago=timesince(submitted_on),
        build_time=build_time(build["started_on"], build["ended_on"]),
        by=build["submitter_name"] or build["submitted_by"] or "—",
        state=build["state"],
        chroots=chroot_badges(build["chroots"]),
    )


def select_cell(build: dict) -> str:
    if build["state"] not in FINAL_STATES:
        return mark_safe("<td></td>")
    return row_html(SELECT, id=build["id"])


def build_time(started_on, ended_on) -> str:
    """How long a finished build took, from its first task's start to its last task's end."""
    if not started_on or not ended_on:
        return "—"
    seconds = max(int((ended_on - started_on).total_seconds()), 0)
    hours, rest = divmod(seconds, 3600)
    if hours:
        return f"{hours} h {rest // 60} min"
    return f"{rest // 60} min {rest % 60} s" if rest >= 60 else f"{rest} s"


def chroot_badges(chroots: list[dict]) -> str:
    badges = " ".join(row_html(CHROOT, **chroot) for chroot in chroots)
    return mark_safe(badges)  # noqa: S308 (a join of escaped badges)


def project_cell(links: RowLinks, owner: str, project: str) -> str:
    url = links.url("project-detail", owner, project)
    return row_html(
        '<td><a href="{url}">{owner}/{project}</a></td>', url=url, owner=owner, project=project
    )


def package_cell(links: RowLinks, build: dict) -> str:
    if build["linked_package"]:
        owner, project = build["ownername"], build["project_name"]
        url = links.url("package-detail", owner, project, build["linked_package"])
        return row_html('<a href="{url}">{name}</a>', url=url, name=build["linked_package"])
    return row_html('<span class="muted">{name}</span>', name=build["package_name"] or "—")


@register.simple_tag(takes_context=True)
def status_task_row(context, task: dict) -> str:
    """One `<tr>` of a status page: a row of `apps.builds.selectors.status_rows`."""
    links = row_links(context)
    queued_on = timezone.localtime(task["queued_on"])
    return row_html(
        STATUS_TASK_ROW,
        build_url=links.url("build-detail", task["build_id"]),
        build_id=task["build_id"],
        project_url=links.url("project-detail", task["ownername"], task["project_name"]),
        full_name=task["full_name"],
        package=task["package_name"] or "—",
        chroot=task["chroot_name"] or "srpm-builds",
        by=task["submitter_name"] or task["submitted_by"] or "—",
        iso=queued_on.isoformat(),
        ago=timesince(queued_on),
        state=task["state"],
    )
