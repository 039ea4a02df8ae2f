"""DRF authentication with Copr's API credentials: HTTP Basic with `login:token`."""

import base64
import binascii

from django.conf import settings
from rest_framework import authentication, exceptions

from apps.accounts.selectors import user_for_api_credentials


def invalid_login_message() -> str:
    return (
        "Login invalid/expired. Please visit "
        f"{settings.PUBLIC_URL}/api to get or renew your API token."
    )


def credentials_from_header(header: str) -> tuple[str, str] | None:
    """`Authorization: <scheme> base64(login:token)`; like Copr, any scheme word is accepted."""
    parts = header.split()
    if len(parts) != 2:
        return None
    try:
        decoded = base64.b64decode(parts[1], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    login, sep, token = decoded.partition(":")
    return (login, token) if sep else None


class ApiTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = request.headers.get("Authorization")
        if not header:
            return None
        credentials = credentials_from_header(header)
        user = user_for_api_credentials(*credentials) if credentials else None
        if user is None:
            raise exceptions.AuthenticationFailed(invalid_login_message())
        return (user, None)

    def authenticate_header(self, request):
        return 'Basic realm="coprsite API"'
