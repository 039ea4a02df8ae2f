"""Owners' Markdown becomes HTML, and nothing in it runs: nh3 keeps only what is safe."""

from html.parser import HTMLParser

from apps.core.markdown import html_sanitized, markdown_html, markdown_text


def parsed(html: str) -> list[tuple[str, dict]]:
    """Every element of the HTML as (tag, attributes), as a browser would build them."""
    elements = []

    class Collector(HTMLParser):
        def handle_starttag(self, tag, attrs):
            elements.append((tag, dict(attrs)))

    Collector().feed(html)
    return elements


def test_markdown_becomes_html():
    html = markdown_html(
        "## Install\n\n**Bold**, *emphasis*, `code` and a [link](https://example.org/x).\n\n"
        "- one\n- two\n\n```\ndnf install hello\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    )
    assert "<h2>Install</h2>" in html
    assert "<strong>Bold</strong>" in html and "<em>emphasis</em>" in html
    assert "<code>code</code>" in html
    assert '<a href="https://example.org/x" rel="nofollow noopener noreferrer">link</a>' in html
    assert "<li>one</li>" in html and "<pre><code>dnf install hello\n</code></pre>" in html
    assert "<td>1</td>" in html


def test_scripts_event_handlers_and_javascript_links_do_not_survive():
    html = markdown_html(
        "<script>alert(1)</script>\n\n"
        '<img src="x" onerror="alert(2)">\n\n'
        "[click](javascript:alert(3)) [data](data:text/html;base64,PHNjcmlwdD4=)\n\n"
        "<a href=\"javascript:alert(4)\">raw</a> <p onclick='alert(5)'>p</p>\n\n"
        "![img](javascript:alert(6)) <iframe src=https://evil.example></iframe>\n\n"
        "<https://example.org/ok> [vb](vbscript:msgbox)"
    )
    elements = parsed(html)
    assert {tag for tag, _ in elements} <= {"p", "a"}, elements
    for tag, attributes in elements:
        assert not any(name.startswith("on") for name in attributes), (tag, attributes)
        for url in (attributes.get("href"), attributes.get("src")):
            assert url is None or url.startswith("https://"), (tag, attributes)
    assert [attrs["href"] for tag, attrs in elements if tag == "a"] == ["https://example.org/ok"]
    # Raw HTML is shown as the text it is, escaped.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_sanitizing_holds_for_html_that_the_parser_would_let_through():
    # What reaches nh3 is normally the parser's own markup; nh3 alone must still clean it.
    raw = (
        '<p onmouseover="x()" style="color:red">hi<script>x()</script>'
        '<a href="javascript:x()">a</a><img src="x" onerror="x()"></p>'
    )
    assert html_sanitized(raw) == (
        '<p>hi<a rel="nofollow noopener noreferrer">a</a><img src="x"></p>'
    )


def test_empty_text_is_empty_html():
    assert markdown_html("") == ""


def test_summaries_read_the_text_without_its_markup():
    text = "Tools for **packagers**, see [the docs](https://x.example/d).\n\n# Next\n<b>x</b> &amp;"
    assert markdown_text(text) == "Tools for packagers, see the docs. Next <b>x</b> &"
