"""The rows of a project's packages table, rendered in Python (a hundred per page).

As template nodes, with two `{% url %}` per row, a page took some 25 ms of CPU on the
2-CPU VM; one `row_html` per row takes a few. The markup stays as the template had it.
"""

from django import template
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince

from apps.core.rowhtml import RowLinks, row_html, row_links
from apps.packages.sources import UNSET

register = template.Library()

ROW = (
    '<tr><td><a href="{package_url}">{name}</a></td><td>{source_type}</td>'
    "<td>{version}</td><td>{latest}</td><td>{submitted}</td><td>{auto_rebuild}</td>"
    "{rebuild}</tr>"
)
SUBMITTED = '<time datetime="{iso}" title="{title}">{ago} ago</time>'
REBUILD = (
    '<td><form method="post" action="{url}"><input type="hidden" name="csrfmiddlewaretoken" '
    'value="{csrf}"><button type="submit" class="secondary">Rebuild</button></form></td>'
)


@register.simple_tag(takes_context=True)
def package_row(context, package, project, can_build: bool = False) -> str:
    """One `<tr>` of a package of `apps.builds.selectors.packages_with_latest_build`; with
    `can_build`, a Rebuild button for each package that has a source."""
    links = row_links(context)
    return row_html(
        ROW,
        package_url=links.url("package-detail", project.ownername, project.name, package.name),
        name=package.name,
        source_type=source_type_cell(package),
        version=package.latest_build_version or "—",
        latest=latest_build_cell(links, package),
        submitted=submitted_cell(package.latest_build_submitted_on),
        auto_rebuild="yes" if package.webhook_rebuild else "no",
        rebuild=rebuild_cell(context, links, package, project) if can_build else "",
    )


def source_type_cell(package) -> str:
    """The package's default source; without one, what its latest build came from."""
    if package.source_type not in ("", UNSET):
        return package.source_type
    if package.latest_build_source_type:
        return row_html(
            '<span class="muted" title="No default source; the latest build came from '
            '{source}">unset ({source})</span>',
            source=package.latest_build_source_type,
        )
    return mark_safe('<span class="muted">unset</span>')


def submitted_cell(submitted_on) -> str:
    if submitted_on is None:
        return "—"
    local = timezone.localtime(submitted_on)
    return row_html(
        SUBMITTED,
        iso=local.isoformat(),
        title=local.strftime("%Y-%m-%d %H:%M"),
        ago=timesince(local),
    )


def rebuild_cell(context, links: RowLinks, package, project) -> str:
    if package.source_type in ("", UNSET):
        return mark_safe("<td></td>")
    return row_html(
        REBUILD,
        url=links.url("package-rebuild", project.ownername, project.name, package.name),
        csrf=str(context.get("csrf_token", "")),
    )


def latest_build_cell(links: RowLinks, package) -> str:
    if not package.latest_build_id:
        return mark_safe('<span class="muted">none</span>')
    return row_html(
        '<a href="{url}">{id}</a> <span class="state state-{state}">{state}</span>',
        url=links.url("build-detail", package.latest_build_id),
        id=package.latest_build_id,
        state=package.latest_build_state,
    )
