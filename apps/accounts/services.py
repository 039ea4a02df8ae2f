"""Every write to accounts: users, @group memberships and API tokens."""

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import ApiToken, Group, User
from apps.accounts.tokens import LOGIN_LENGTH, TOKEN_LENGTH, hash_token, random_lowercase


@dataclass(frozen=True)
class IssuedToken:
    """The clear-text credentials, shown to the user once; only the hash is stored."""

    login: str
    token: str
    expires_on: datetime.date


def api_token_regenerate(*, user: User) -> IssuedToken:
    """Issue a fresh login/token pair for `user`, replacing any earlier one."""
    token = random_lowercase(TOKEN_LENGTH)
    expires_on = timezone.now().date() + datetime.timedelta(days=settings.API_TOKEN_DAYS)
    with transaction.atomic():
        login = _unused_login()
        ApiToken.objects.update_or_create(
            user=user,
            defaults={
                "login": login,
                "token_hash": hash_token(token),
                "expires_on": expires_on,
                "created_on": timezone.now(),
            },
        )
    return IssuedToken(login=login, token=token, expires_on=expires_on)


def _unused_login() -> str:
    while True:
        login = random_lowercase(LOGIN_LENGTH)
        if not ApiToken.objects.filter(login=login).exists():
            return login


def group_ensure(*, external_name: str, name: str | None = None) -> Group:
    """The @group for an identity-provider group, created on first sight."""
    group, _ = Group.objects.get_or_create(
        external_name=external_name, defaults={"name": name or external_name}
    )
    return group


def user_set_groups(*, user: User, external_names: list[str]) -> None:
    """Make `user`'s @group memberships exactly the groups the identity provider reports."""
    with transaction.atomic():
        groups = [group_ensure(external_name=name) for name in external_names]
        user.owner_groups.set(groups)


def user_create_or_update(
    *,
    username: str,
    email: str = "",
    is_staff: bool | None = None,
    password: str | None = None,
    group_names: list[str] | None = None,
) -> tuple[User, bool]:
    """Create `username` or update the given fields of an existing user."""
    with transaction.atomic():
        user, created = User.objects.get_or_create(username=username)
        if email:
            user.email = email
        if is_staff is not None:
            user.is_staff = is_staff
            user.is_superuser = is_staff
        if password is not None:
            user.set_password(password)
        elif created:
            user.set_unusable_password()
        user.is_active = True
        user.save()
        if group_names is not None:
            user_set_groups(user=user, external_names=group_names)
    return user, created


def user_disable(*, user: User) -> None:
    """Lock a user out: no web login, no API token; their projects stay."""
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(is_active=False)
        ApiToken.objects.filter(user=user).delete()
