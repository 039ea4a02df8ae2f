"""The ways to log in that this site offers right now, for the login page."""

from dataclasses import dataclass
from urllib.parse import urlencode

from allauth.socialaccount.adapter import get_adapter
from django.conf import settings
from django.urls import reverse

from apps.accounts.oidc import oidc_configured


@dataclass(frozen=True)
class LoginMethod:
    label: str
    url: str
    # allauth starts a login only on POST (with the CSRF token); mozilla-django-oidc on GET.
    http_method: str


def external_login_methods(request, next_url: str = "") -> list[LoginMethod]:
    """OIDC first, then the GitHub/GitLab apps allauth knows (settings or console)."""
    methods = []
    if oidc_configured():
        query = f"?{urlencode({'next': next_url})}" if next_url else ""
        methods.append(
            LoginMethod(
                label=f"Log in with {settings.OIDC_PROVIDER_NAME}",
                url=reverse("oidc_authentication_init") + query,
                http_method="get",
            )
        )
    for app in get_adapter().list_apps(request):
        provider = app.get_provider(request)
        params = {"process": "login", **({"next": next_url} if next_url else {})}
        methods.append(
            LoginMethod(
                label=f"Log in with {provider.name}",
                url=provider.get_login_url(request, **params),
                http_method="post",
            )
        )
    return methods
