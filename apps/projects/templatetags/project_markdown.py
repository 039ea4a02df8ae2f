"""`{{ text|markdown }}`: an owner's Markdown (descriptions, instructions) as sanitized HTML."""

from django import template

from apps.core.markdown import markdown_html

register = template.Library()


@register.filter(name="markdown")
def markdown(text: str):
    return markdown_html(text)
