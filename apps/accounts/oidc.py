"""OpenID Connect login (mozilla-django-oidc): accounts keyed by issuer + `sub`, groups synced."""

import logging

import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import SuspiciousOperation, ValidationError
from django.core.validators import MaxLengthValidator
from django.http import Http404
from django.shortcuts import resolve_url
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from apps.accounts.models import NAME_VALIDATOR
from apps.accounts.services import LoginRefused, oidc_user_login

logger = logging.getLogger(__name__)

REQUIRED_SETTINGS = (
    "OIDC_RP_CLIENT_ID",
    "OIDC_OP_AUTHORIZATION_ENDPOINT",
    "OIDC_OP_TOKEN_ENDPOINT",
    "OIDC_OP_USER_ENDPOINT",
)
# Copr limits user and group names to 100 characters.
MAX_NAME_LENGTH = 100


def oidc_configured() -> bool:
    """Read at request time, so the login page and the URLs follow the current settings."""
    if not all(getattr(settings, name, "") for name in REQUIRED_SETTINGS):
        return False
    # Asymmetric signatures are checked against the provider's published keys.
    return settings.OIDC_RP_SIGN_ALGO.startswith("HS") or bool(settings.OIDC_OP_JWKS_ENDPOINT)


def is_usable_name(name) -> bool:
    if not isinstance(name, str):
        return False
    try:
        NAME_VALIDATOR(name)
        MaxLengthValidator(MAX_NAME_LENGTH)(name)
    except ValidationError:
        return False
    return True


def group_names_from_claims(claims: dict) -> list[str]:
    """The groups claim as @group names; a missing claim means no groups at all."""
    value = claims.get(settings.OIDC_GROUPS_CLAIM) or []
    if not isinstance(value, list):
        value = [value]
    names = [name for name in value if is_usable_name(name)]
    if len(names) != len(value):
        # Names like Keycloak's "/parent/child" paths cannot be @group names; say so once.
        skipped = [name for name in value if name not in names]
        logger.warning("OIDC groups claim: skipping unusable group names %r", skipped)
    return sorted(set(names))


def audience_includes(payload: dict, client_id: str) -> bool:
    audience = payload.get("aud")
    return client_id in (audience if isinstance(audience, list) else [audience])


class OidcBackend(OIDCAuthenticationBackend):
    """Only answers the OIDC callback; inert while OIDC is not configured."""

    def __init__(self, *args, **kwargs):
        # Django instantiates every backend for every password login too; without settings
        # the parent constructor would raise ImproperlyConfigured.
        self.enabled = oidc_configured()
        if self.enabled:
            super().__init__(*args, **kwargs)

    def authenticate(self, request, **kwargs):
        # Only the callback view passes a nonce; never react to a password login's call.
        if not self.enabled or request is None or "nonce" not in kwargs:
            return None
        try:
            return super().authenticate(request, **kwargs)
        except requests.RequestException as error:
            logger.warning("OIDC login failed talking to the provider: %s", error)
            messages.error(request, "The identity provider could not be reached; try again.")
            return None

    def get_or_create_user(self, access_token, id_token, payload):
        """The account for this identity, created on first login; groups follow the claim."""
        if not audience_includes(payload, self.OIDC_RP_CLIENT_ID):
            raise SuspiciousOperation("ID token was issued for another client")
        claims = self.get_userinfo(access_token, id_token, payload)
        # OIDC Core 5.3.2: userinfo must describe the same subject as the ID token.
        if str(claims.get("sub")) != str(payload.get("sub")):
            raise SuspiciousOperation("userinfo sub differs from the ID token's")
        try:
            return oidc_user_login(
                issuer=payload.get("iss", ""),
                subject=str(payload["sub"]),
                username=self.username_from_claims(claims),
                email=claims.get("email") or "",
                group_names=group_names_from_claims(claims),
            )
        except LoginRefused as refusal:
            logger.warning(
                "OIDC login refused for iss=%s sub=%s: %s",
                payload.get("iss"),
                payload.get("sub"),
                refusal,
            )
            messages.error(self.request, str(refusal))
            return None

    def username_from_claims(self, claims: dict) -> str:
        claim = settings.OIDC_USERNAME_CLAIM
        username = claims.get(claim)
        if not username:
            raise LoginRefused(f"The identity provider sent no '{claim}' claim to name you by.")
        if not is_usable_name(username):
            raise LoginRefused(
                f"Your username '{username}' cannot be used here: up to {MAX_NAME_LENGTH} "
                "letters, digits, '.', '_' and '-'. Ask the operator for help."
            )
        return username

    def get_user(self, user_id):
        # Unlike the parent, refuse disabled users, so disabling ends their sessions too.
        return ModelBackend.get_user(self, user_id)


def oidc_login(request):
    """Start the authorization code flow (Copr's /oidc_login/)."""
    if not oidc_configured():
        raise Http404("OpenID Connect login is not configured")
    return OIDCAuthenticationRequestView.as_view()(request)


class CallbackView(OIDCAuthenticationCallbackView):
    @property
    def failure_url(self):
        # The parent redirects to the setting verbatim; a URL name needs resolving.
        return resolve_url(settings.LOGIN_REDIRECT_URL_FAILURE)


def oidc_callback(request):
    """Where the provider sends the browser back (Copr's /oidc_auth/)."""
    if not oidc_configured():
        raise Http404("OpenID Connect login is not configured")
    return CallbackView.as_view()(request)
