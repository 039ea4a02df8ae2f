"""URL converters for Copr's owners: `alice` for users, `g/packagers` for @groups."""

from django.urls import register_converter


class OwnerConverter:
    """`g/<group>` ↔ `@group`, anything else is a username; one route serves both owners."""

    # No NUL: PostgreSQL cannot even compare it, so such a URL is a 404, not a 500.
    regex = r"g/[^/\x00]+|[^/\x00]+"

    def to_python(self, value: str) -> str:
        return "@" + value[2:] if value.startswith("g/") else value

    def to_url(self, value: str) -> str:
        return "g/" + value[1:] if value.startswith("@") else value


class ProjectNameConverter:
    """A project name; never only digits, so `/coprs/build/<id>/` stays a build link."""

    regex = r"(?!\d+(?:/|$))[^/\x00]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(OwnerConverter, "owner")
register_converter(ProjectNameConverter, "project")
