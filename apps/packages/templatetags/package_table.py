"""The rows of a project's packages table, rendered in Python (a hundred per page).

As template nodes, with two `{% url %}` per row, a page took some 25 ms of CPU on the
2-CPU VM; one `row_html` per row takes a few. The markup stays as the template had it.
"""

from django import template
from django.utils.safestring import mark_safe

from apps.core.rowhtml import RowLinks, row_html, row_links

register = template.Library()

ROW = (
    '<tr><td><a href="{package_url}">{name}</a></td><td>{source_type}</td>'
    "<td>{version}</td><td>{latest}</td></tr>"
)


@register.simple_tag(takes_context=True)
def package_row(context, package, project) -> str:
    """One `<tr>` of a package of `apps.builds.selectors.packages_with_latest_build`."""
    links = row_links(context)
    return row_html(
        ROW,
        package_url=links.url("package-detail", project.ownername, project.name, package.name),
        name=package.name,
        source_type=package.source_type,
        version=package.latest_build_version or "—",
        latest=latest_build_cell(links, package),
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
