"""Reusable reads of accounts."""

from apps.accounts.models import ApiToken, User
from apps.accounts.tokens import token_matches


def user_for_api_credentials(login: str, token: str) -> User | None:
    """The active user whose unexpired API token is `login`/`token`, or None."""
    api_token = ApiToken.objects.select_related("user").filter(login=login).first()
    if api_token is None or api_token.is_expired or not api_token.user.is_active:
        return None
    if not token_matches(token, api_token.token_hash):
        return None
    return api_token.user
