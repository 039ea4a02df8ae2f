"""An owner's Markdown (descriptions, instructions): `{{ text|markdown }}` as sanitized HTML,
`{{ text|markdown_text }}` as the plain text a one-line summary shows."""

from django import template

from apps.core.markdown import markdown_html
from apps.core.markdown import markdown_text as plain_text

register = template.Library()


@register.filter(name="markdown")
def markdown(text: str):
    return markdown_html(text)


@register.filter(name="markdown_text")
def markdown_text(text: str) -> str:
    return plain_text(text)
