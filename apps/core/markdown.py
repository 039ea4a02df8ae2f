"""Markdown that owners write (project descriptions and instructions), as safe HTML.

Copr renders both as Markdown. markdown-it-py turns the text into HTML with raw HTML
escaped, and nh3 (the Ammonia sanitizer) then keeps only the tags, attributes and URL
schemes below: no script, no event handlers, no style, no `javascript:` or `data:` links,
whatever the parser lets through.
"""

from html import unescape

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

# CommonMark with GitHub's tables and strikethrough; `html: False` escapes raw HTML, and
# linkify is off so only explicit links and autolinks (<https://...>) become links.
PARSER = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "dl", "dt", "em", "h1", "h2",
    "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s", "strong",
    "sub", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
    "td": {"align"},
    "th": {"align"},
}
URL_SCHEMES = {"http", "https", "mailto"}
# A one-line summary reads only the start of the text: a list page renders thirty of them.
SUMMARY_SOURCE_CHARS = 2000


def markdown_html(text: str) -> SafeString:
    """The owner's Markdown as sanitized HTML, safe to put in a page as it is."""
    return html_sanitized(PARSER.render(text or ""))


def html_sanitized(html: str) -> SafeString:
    """Only the tags, attributes and URL schemes above survive, whatever the HTML held."""
    cleaned = nh3.clean(
        html,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        # Links out of an owner's text get no referrer, no opener and no search-engine credit.
        link_rel="nofollow noopener noreferrer",
    )
    return mark_safe(cleaned)  # noqa: S308 (nh3 has just sanitized it)


def markdown_text(text: str) -> str:
    """What a reader sees of the owner's Markdown, as plain text on one line (list summaries:
    `**fast** [tools](https://...)` reads "fast tools"). Plain text: the page escapes it."""
    html = PARSER.render((text or "")[:SUMMARY_SOURCE_CHARS])
    return " ".join(unescape(nh3.clean(html, tags=set())).split())
