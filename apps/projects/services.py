"""Every write to projects, their chroots and permissions, and the chroot catalog."""

from django.db import transaction

from apps.projects.models import Chroot


def chroot_set_active(*, chroot_ids: list[int], active: bool) -> int:
    """Activate or deactivate chroots; inactive ones take no new builds. Returns the count."""
    return Chroot.objects.filter(pk__in=chroot_ids).update(is_active=active)


def chroot_mark_end_of_life(*, chroot_ids: list[int]) -> int:
    """End of life: no new builds, existing repositories stay published."""
    with transaction.atomic():
        return Chroot.objects.filter(pk__in=chroot_ids).update(is_active=False, end_of_life=True)
