"""Every write to accounts: users, @group memberships, OIDC identities and API tokens."""

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import ApiToken, Group, OidcIdentity, UploadSlot, User
from apps.accounts.roles import staff_group_ensure
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
    is_superuser: bool | None = None,
    password: str | None = None,
    group_names: list[str] | None = None,
) -> tuple[User, bool]:
    """Create `username` or update the given fields of an existing user.

    `is_staff` gives the staff role (Copr's admins, apps/accounts/roles.py); only
    `is_superuser` gives what runs commands on builders, and implies staff.
    """
    with transaction.atomic():
        user, created = User.objects.get_or_create(username=username)
        if email:
            user.email = email
        if is_superuser is not None:
            user.is_superuser = is_superuser
            is_staff = True if is_superuser else is_staff
        if is_staff is not None:
            user.is_staff = is_staff
            _staff_role_set(user, is_staff)
        if password is not None:
            user.set_password(password)
        elif created:
            user.set_unusable_password()
        user.is_active = True
        user.save()
        if group_names is not None:
            user_set_groups(user=user, external_names=group_names)
    return user, created


def _staff_role_set(user: User, member: bool) -> None:
    group = staff_group_ensure()
    if member:
        user.groups.add(group)
    else:
        user.groups.remove(group)


def user_disable(*, user: User) -> None:
    """Lock a user out: no web login, no API token; their projects stay."""
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(is_active=False)
        ApiToken.objects.filter(user=user).delete()


class LoginRefused(Exception):
    """An identity-provider login that must not go ahead; the message is for the user."""


def oidc_user_login(
    *, issuer: str, subject: str, username: str, email: str, group_names: list[str]
) -> User:
    """The account an OIDC identity logs into, created on its first login.

    The identity (issuer + `sub`) decides the account, not the username claim: a first login
    whose username belongs to another account is refused rather than merged, so nobody takes
    over an account by picking its name at the provider. A later rename at the provider keeps
    the coprsite username. On every login the e-mail and the @group memberships are replaced
    by what the provider reports.
    """
    with transaction.atomic():
        identity = (
            OidcIdentity.objects.select_for_update()
            .select_related("user")
            .filter(issuer=issuer, subject=subject)
            .first()
        )
        if identity is None:
            identity = OidcIdentity.objects.create(
                user=_user_for_new_identity(username=username, email=email),
                issuer=issuer,
                subject=subject,
            )
        user = identity.user
        if not user.is_active:
            raise LoginRefused("This account is disabled.")
        if email and user.email != email:
            User.objects.filter(pk=user.pk).update(email=email)
            user.email = email
        OidcIdentity.objects.filter(pk=identity.pk).update(last_login=timezone.now())
        user_set_groups(user=user, external_names=group_names)
    return user


def _user_for_new_identity(*, username: str, email: str) -> User:
    if User.objects.filter(username__iexact=username).exists():
        raise LoginRefused(
            f"The username '{username}' already belongs to another account here. "
            "Ask the operator to link your login to it, or to free the name."
        )
    user = User(username=username, email=email)
    user.set_unusable_password()
    user.save()
    return user


def upload_slot_take(*, user: User, limit: int, lifetime: datetime.timedelta) -> int | None:
    """A slot for one more upload of `user` (its id), or None when `limit` are in flight."""
    with transaction.atomic():
        # Takes of one user wait for each other here, so two cannot both see a free slot.
        User.objects.select_for_update().filter(pk=user.pk).exists()
        now = timezone.now()
        UploadSlot.objects.filter(user=user, expires_on__lte=now).delete()
        if UploadSlot.objects.filter(user=user).count() >= limit:
            return None
        return UploadSlot.objects.create(user=user, expires_on=now + lifetime).pk


def upload_slot_release(*, slot_id: int) -> None:
    UploadSlot.objects.filter(pk=slot_id).delete()
