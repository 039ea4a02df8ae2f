"""The rows of the monitor (packages × chroots), rendered in Python.

A 1,500-package project with four chroots has 6,000 cells; as template nodes with a
`{% url %}` in each they took most of a second, as strings filled from one reversed URL
per view (`RowLinks`) a few tens of milliseconds. The markup stays as the template had it.
"""

from django import template
from django.utils.safestring import SafeString, mark_safe

from apps.core.rowhtml import RowLinks, row_html, row_links

register = template.Library()

ROW = '<tr>\n      <td><a href="{url}">{name}</a></td>\n      {cells}\n    </tr>'
CELL = (
    '<td><a href="{url}"><span class="state state-{state}" title="build {build_id}: {state}">'
    "{state}</span></a>{detail}</td>"
)
DETAIL = ' <a href="{url}">{build_id}</a> <span class="version">{version}</span>'
EMPTY = '<td><span class="muted">—</span></td>'


@register.simple_tag(takes_context=True)
def monitor_rows(context, project, rows: list[dict], detailed: bool) -> SafeString:
    """Every `<tr>` of the monitor: `rows` hold a package `name` and its `cells` (a
    `monitor_cells` value or None per chroot)."""
    links = row_links(context)
    owner, name = project.ownername, project.name
    html = [
        row_html(
            ROW,
            url=links.url("package-detail", owner, name, row["name"]),
            name=row["name"],
            cells=cells_html(links, row["cells"], detailed),
        )
        for row in rows
    ]
    return mark_safe("\n    ".join(html))  # noqa: S308 (a join of escaped rows)


def cells_html(links: RowLinks, cells: list, detailed: bool) -> SafeString:
    html = "\n      ".join(cell_html(links, cell, detailed) for cell in cells)
    return mark_safe(html)  # noqa: S308 (a join of escaped cells)


def cell_html(links: RowLinks, cell: dict | None, detailed: bool) -> str:
    if cell is None:
        return EMPTY
    url = links.url("build-detail", cell["build_id"])
    detail = (
        row_html(DETAIL, url=url, build_id=cell["build_id"], version=cell["version"])
        if detailed
        else ""
    )
    return row_html(CELL, url=url, state=cell["state"], build_id=cell["build_id"], detail=detail)
