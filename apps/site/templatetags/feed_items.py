"""The items of the `/rss/` feed, rendered in Python: two hundred by default, up to a
thousand, each with two links that a `{% url %}` apiece made the feed's main cost."""

from django import template
from django.utils import timezone
from django.utils.dateformat import format as format_date
from django.utils.safestring import SafeString, mark_safe

from apps.core.rowhtml import row_html, row_links

register = template.Library()

ITEM = (
    "<item>\n<title>{full_name}</title>\n<link>{url}</link>\n"
    '<guid isPermaLink="true">{url}</guid>\n<description>{description}</description>\n'
    "<pubDate>{published}</pubDate>\n</item>\n"
)


@register.simple_tag(takes_context=True)
def feed_items(context, projects: list[dict]) -> SafeString:
    """An `<item>` per row of `apps.projects.selectors.project_rows` (with `created_on`)."""
    links = row_links(context)
    request = context["request"]
    site = f"{request.scheme}://{request.get_host()}"
    items = [
        row_html(
            ITEM,
            full_name=project["full_name"],
            url=site + links.url("project-detail", project["ownername"], project["name"]),
            description=project["description"],
            published=format_date(timezone.localtime(project["created_on"]), "r"),
        )
        for project in projects
    ]
    return mark_safe("".join(items))  # noqa: S308 (a join of escaped items)
