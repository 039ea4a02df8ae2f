"""Serializer fields for API shapes: unix times, blank-as-null text, lists of names."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


@extend_schema_field({"type": "integer", "nullable": True, "description": "Unix time (UTC)."})
class UnixTimeField(serializers.ReadOnlyField):
    """A datetime as whole seconds since the epoch; null (never rendered here) stays null."""

    def to_representation(self, value) -> int:
        return int(value.timestamp())


@extend_schema_field({"type": "string", "nullable": True})
class TextOrNullField(serializers.ReadOnlyField):
    """Text that is empty until known (package name, version) renders as null."""

    def to_representation(self, value) -> str | None:
        return value or None


@extend_schema_field(OpenApiTypes.OBJECT)
class ReadOnlyJSONField(serializers.ReadOnlyField):
    """A JSON value rendered as stored."""


class NameListField(serializers.ListField):
    """Names as a JSON list, a repeated form field, or comma-separated text."""

    child = serializers.CharField(max_length=200)

    def to_internal_value(self, data) -> list[str]:
        if isinstance(data, str):
            data = [data]
        items = super().to_internal_value(data)
        return [name.strip() for item in items for name in item.split(",") if name.strip()]


class StringListField(serializers.ListField):
    """A JSON list of strings (repositories, dependencies, forge projects)."""

    child = serializers.CharField()
