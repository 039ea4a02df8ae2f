"""DRF authentication with Copr's API credentials: HTTP Basic with `login:token`."""

import base64
import binascii

from django.conf import settings
from django.http import HttpRequest
from rest_framework import authentication, exceptions

from apps.accounts.models import User
from apps.accounts.selectors import user_for_api_credentials
from apps.accounts.throttle import (
    LoginLocked,
    api_attempt,
    login_allowed_check,
    login_failure_record,
)


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


def user_for_authorization(request: HttpRequest, header: str) -> User | None:
    """The user of an `Authorization` header's API credentials, or None when they are wrong.

    Failures count towards the login throttle; LoginLocked once the login or the client's
    address is locked out, before the token is even looked at.
    """
    credentials = credentials_from_header(header)
    attempt = api_attempt(credentials[0] if credentials else None)
    login_allowed_check(request, attempt)
    user = user_for_api_credentials(*credentials) if credentials else None
    if user is None:
        login_failure_record(request, attempt)
    return user


class ApiTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = request.headers.get("Authorization")
        if not header:
            return None
        try:
            # The Django request: the one axes reads the address and headers of.
            user = user_for_authorization(request._request, header)
        except LoginLocked as locked:
            raise exceptions.Throttled(wait=locked.retry_after, detail=locked.message) from None
        if user is None:
            raise exceptions.AuthenticationFailed(invalid_login_message())
        return (user, None)

    def authenticate_header(self, request):
        return 'Basic realm="coprsite API"'
