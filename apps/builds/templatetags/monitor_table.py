"""The rows of the monitor (packages × chroots), rendered in Python.

A 1,500-package project with four chroots has 6,000 cells; as template nodes with a
`{% url %}` in each they took most of a second, and even one `row_html` per cell a tenth
of one. Each cell is an f-string around a build URL cut from one `reverse` (its id is an
int, its state a `State` value); the package names and versions are escaped. The markup
stays as the template had it.
"""

from html import escape

from django import template
from django.utils.safestring import SafeString, mark_safe

from apps.builds.models import State
from apps.core.rowhtml import MARKERS, RowLinks, row_links

register = template.Library()

STATES = frozenset(State.values)  # plain words: nothing to escape
EMPTY = '<td><span class="muted">—</span></td>'


@register.simple_tag(takes_context=True)
def monitor_rows(context, project, rows: list[dict], detailed: bool) -> SafeString:
    """Every `<tr>` of the monitor: `rows` hold a package `name` and its `cells` (a
    `monitor_cells` value or None per chroot)."""
    links = row_links(context)
    owner, name = project.ownername, project.name
    build_url = url_parts(links, "build-detail")
    html = []
    for row in rows:
        url = escape(links.url("package-detail", owner, name, row["name"]))
        cells = "\n      ".join(cell_html(build_url, cell, detailed) for cell in row["cells"])
        html.append(
            f'<tr>\n      <td><a href="{url}">{escape(row["name"])}</a></td>\n      '
            f"{cells}\n    </tr>"
        )
    return mark_safe("\n    ".join(html))  # noqa: S308 (names escaped, the rest ints and states)


def url_parts(links: RowLinks, viewname: str) -> tuple[str, str]:
    """What comes before and after the (integer) last argument of `viewname`'s URL."""
    marker = MARKERS[1]  # the `int` converter's stand-in
    before, after = links.url(viewname, marker).split(marker)
    return escape(before), escape(after)


def cell_html(build_url: tuple[str, str], cell: dict | None, detailed: bool) -> str:
    if cell is None:
        return EMPTY
    build_id, state = int(cell["build_id"]), cell["state"]
    if state not in STATES:
        state = escape(state)
    url = f"{build_url[0]}{build_id}{build_url[1]}"
    detail = (
        f' <a href="{url}">{build_id}</a> <span class="version">{escape(cell["version"])}</span>'
        if detailed
        else ""
    )
    return (
        f'<td><a href="{url}"><span class="state state-{state}" title="build {build_id}: '
        f'{state}">{state}</span></a>{detail}</td>'
    )
