"""RubyGems: a gem from the configured gem server, whose spec gem2rpm writes on the builder."""

from django import forms

from apps.core.errors import ServiceError
from apps.packages.models import SourceType
from apps.packages.sources.base import SourceForm, SourceMethod, text_field


class RubygemsSource(SourceForm):
    source_type = SourceType.RUBYGEMS
    title = "RubyGems"
    description = "Package a gem from rubygems.org with gem2rpm."
    source_fields = ("gem_name",)

    gem_name = forms.CharField(label="Gem name", max_length=200)


class RubygemsMethod(SourceMethod):
    name = SourceType.RUBYGEMS
    form = RubygemsSource
    api_keys = ("gem_name",)

    def check(self, source_json: dict) -> None:
        name = text_field(source_json, "gem_name", required=True)
        if not all(c.isalnum() or c in "-_." for c in name):
            raise ServiceError(f"Invalid gem name '{name}'.")


METHOD = RubygemsMethod()
