"""The rows of a project's packages table, rendered in Python (a hundred per page).

As template nodes, with two `{% url %}` per row, a page took some 25 ms of CPU on the
2-CPU VM; one `format_html` per row takes a few. The markup stays as the template had it.
"""

from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

register = template.Library()

ROW = (
    '<tr><td><a href="{package_url}">{name}</a></td><td>{source_type}</td>'
    "<td>{version}</td><td>{latest}</td></tr>"
)


@register.simple_tag
def package_row(package, project) -> str:
    """One `<tr>` of a package of `apps.builds.selectors.packages_with_latest_build`."""
    return format_html(
        ROW,
        package_url=reverse("package-detail", args=[project.ownername, project.name, package.name]),
        name=package.name,
        source_type=package.source_type,
        version=package.latest_build_version or "—",
        latest=latest_build_cell(package),
    )


def latest_build_cell(package) -> str:
    if not package.latest_build_id:
        return mark_safe('<span class="muted">none</span>')
    return format_html(
        '<a href="{}">{}</a> <span class="state state-{}">{}</span>',
        reverse("build-detail", args=[package.latest_build_id]),
        package.latest_build_id,
        package.latest_build_state,
        package.latest_build_state,
    )
