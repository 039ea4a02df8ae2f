"""`format_html` and `reverse` for the rows of long tables, without their per-call overhead.

Django's `format_html` escapes each value through `conditional_escape` and the lazy-string
checks of `escape`, which for a page of fifty builds (some 700 values) was a third of the
page's CPU. This escapes with `html.escape`, the function Django's `escape` itself calls,
and passes what is already safe HTML (a `SafeString`, e.g. a nested row part) as it is.
"""

from contextlib import suppress
from html import escape
from urllib.parse import quote

from django.urls import NoReverseMatch, reverse
from django.utils.safestring import SafeString, mark_safe

# What `reverse` leaves unquoted in a path segment (RFC 3986 sub-delimiters, ~ : @).
URL_SAFE = "!$&'()*+,;=~:@"


def row_html(template: str, **values) -> SafeString:
    """`template` (a `str.format` template) filled with `values`, each escaped unless safe."""
    escaped = {
        name: value if isinstance(value, SafeString) else escape(str(value))
        for name, value in values.items()
    }
    return mark_safe(template.format(**escaped))  # noqa: S308 (every value escaped above)


# Stand-ins for a URL's last argument: one for names, one for the `int` converter.
MARKERS = ("zz-row-link-zz", "918273645546372819")


class RowLinks:
    """The links of one table's rows: each view's URL is reversed once, with a marker for
    its last argument, which each row then fills in (a `reverse` per link was a tenth of
    the CPU of a page of fifty builds). Scoped to one table, as URL configuration and
    script prefix are to one request."""

    def __init__(self):
        self.templates: dict[tuple, tuple[str, str]] = {}

    def url(self, viewname: str, *args) -> str:
        *fixed, last = args
        key = (viewname, *fixed)
        if key not in self.templates:
            self.templates[key] = self.template(viewname, fixed)
        template, marker = self.templates[key]
        return template.replace(marker, quote(str(last), safe=URL_SAFE), 1)

    @staticmethod
    def template(viewname: str, fixed: list) -> tuple[str, str]:
        for marker in MARKERS:
            with suppress(NoReverseMatch):
                return reverse(viewname, args=[*fixed, marker]), marker
        raise NoReverseMatch(f"{viewname} takes no name or number as its last argument")


def row_links(context) -> RowLinks:
    """The `RowLinks` of the template being rendered (a tag's `takes_context`)."""
    return context.render_context.setdefault(RowLinks, RowLinks())
