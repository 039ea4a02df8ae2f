"""Reusable reads of repository work that is asked for and not done yet."""

from django.db.models import F, QuerySet

from apps.repos.models import KeyState, Repository, SigningKey

OWNER = ("project__owner_user", "project__owner_group")


def repositories_awaiting_run() -> QuerySet[Repository]:
    """Repositories whose metadata lags behind what was asked (Copr's createrepo actions)."""
    return (
        Repository.objects.filter(requested_serial__gt=F("published_serial"))
        .select_related(*OWNER, "chroot")
        .order_by("pk")
    )


def signing_keys_pending() -> QuerySet[SigningKey]:
    """Projects whose signing key is still to be made (Copr's gen_gpg_key actions)."""
    return SigningKey.objects.filter(state=KeyState.PENDING).select_related(*OWNER).order_by("pk")
