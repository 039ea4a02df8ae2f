"""Rows of long tables: escaped like format_html, linked like reverse."""

from django.template import Context, Template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from apps.core.rowhtml import RowLinks, row_html

HOSTILE = "<script>alert('x')</script> & \"quoted\""


def test_row_html_escapes_like_format_html_and_keeps_safe_parts():
    template = "<td title={title}>{text}</td><td>{cell}</td>"
    cell = mark_safe("<b>bold</b>")

    ours = row_html(template, title=HOSTILE, text=42, cell=cell)

    assert isinstance(ours, SafeString)
    assert ours == format_html(template, title=HOSTILE, text=42, cell=cell)
    assert "<script>" not in ours and "<b>bold</b>" in ours


def test_row_links_are_what_reverse_gives_for_every_kind_of_argument():
    links = RowLinks()
    cases = [
        ("build-detail", 7),
        ("build-detail", 123456),
        ("project-detail", "alice", "hello"),
        ("project-detail", "@packagers", "tools"),
        ("project-detail", "alice", "1st-try"),
        ("package-detail", "@packagers", "tools", "python3-foo+bar"),
        ("package-detail", "alice", "hello", "c++"),
    ]
    for viewname, *args in cases:
        assert links.url(viewname, *args) == reverse(viewname, args=args), (viewname, args)
    # One reverse per view and fixed arguments, whatever the number of rows.
    assert len(links.templates) == 5


def test_each_rendering_of_a_table_has_its_own_links():
    template = Template(
        "{% load project_table %}{% for p in rows %}{% project_row p %}{% endfor %}"
    )
    row = {"ownername": "alice", "name": "hello", "full_name": "alice/hello", "description": ""}
    context = Context({"rows": [{**row, "chroots": ["fedora-43-x86_64"]}]})

    html = template.render(context)

    assert f'<a href="{reverse("project-detail", args=["alice", "hello"])}">alice/hello</a>' in html
    assert RowLinks not in context.render_context
