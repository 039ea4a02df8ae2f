"""OpenAPI details drf-spectacular cannot derive: the login:token scheme and enum names."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension

SCHEMA_SETTINGS = {
    "TITLE": "coprsite native API",
    "DESCRIPTION": "Projects, builds and build tasks. Anonymous clients may read.",
    "VERSION": "1",
    "ENUM_NAME_OVERRIDES": {
        "BuildStateEnum": "apps.builds.models.State.choices",
        "CancelStateEnum": [("canceled", "canceled")],
    },
}


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """Copr's API credentials: HTTP Basic with the login and token shown at /api."""

    target_class = "apps.accounts.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "http",
            "scheme": "basic",
            "description": "HTTP Basic with `login:token` from the API page of the portal.",
        }
