"""The rows of the projects table, rendered in Python (thirty per page of a list or search).

As template nodes with a `{% url %}` and a loop over chroots per row, a user page spent
most of its CPU here; one `row_html` per row takes a fraction of that. The markup stays
as the template had it.
"""

from django import template
from django.utils.text import Truncator

from apps.core.markdown import markdown_text
from apps.core.rowhtml import row_html, row_links

register = template.Library()

ROW = (
    '<tr><td><a href="{url}">{full_name}</a></td><td>{description}</td>'
    '<td class="muted">{chroots}</td></tr>'
)
DESCRIPTION_CHARS = 140


@register.simple_tag(takes_context=True)
def project_row(context, project: dict) -> str:
    """One `<tr>` of a row of `apps.projects.selectors.project_rows`."""
    return row_html(
        ROW,
        url=row_links(context).url("project-detail", project["ownername"], project["name"]),
        full_name=project["full_name"],
        description=Truncator(markdown_text(project["description"])).chars(DESCRIPTION_CHARS),
        chroots=", ".join(project["chroots"]),
    )
