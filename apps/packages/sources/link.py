"""Link: the URL of an SRPM or spec file, which the builder downloads."""

from urllib.parse import urlsplit

from django import forms
from django.conf import settings

from apps.core.errors import ServiceError
from apps.packages.models import SourceType
from apps.packages.sources.base import (
    SPEC_SUFFIX,
    SRPM_SUFFIXES,
    SourceForm,
    SourceMethod,
    probe_url,
    text_field,
)


class LinkSource(SourceForm):
    source_type = SourceType.LINK
    title = "From a URL"
    description = "A URL of an SRPM or a spec file; the builder downloads it."
    source_fields = ("url",)

    url = forms.URLField(label="SRPM or spec URL", assume_scheme="https")


class LinkMethod(SourceMethod):
    name = SourceType.LINK
    form = LinkSource
    error_field = "pkgs"

    def check(self, source_json: dict) -> None:
        check_srpm_url(text_field(source_json, "url", required=True))


def check_srpm_url(url: str) -> None:
    """An http(s) URL of an SRPM or spec that answers; the builder downloads it later."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ServiceError(f"The source URL must be an http:// or https:// URL, not '{url}'.")
    if not parts.path.endswith((*SRPM_SUFFIXES, SPEC_SUFFIX)):
        raise ServiceError(f"The source URL must point to a .src.rpm or .spec file: '{url}'.")
    if settings.SUBMIT_CHECK_URLS:
        probe_url(url)


METHOD = LinkMethod()
