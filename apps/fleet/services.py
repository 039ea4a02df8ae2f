"""Every write to the fleet: builder pools and builders."""

import platform

from django.conf import settings
from django.utils import timezone

from apps.fleet.models import Builder, BuilderPool, BuilderState, PoolKind

LOCAL_POOL_NAME = "local"


def builder_drain(*, builder_ids: list[int]) -> int:
    """Let builders finish what they run but take no new tasks. Returns the count."""
    return Builder.objects.filter(pk__in=builder_ids).update(state=BuilderState.DRAINING)


def builder_seen(*, builder_id: int | None) -> None:
    """A builder reported in (a running task's heartbeat): its "last seen" moves."""
    if builder_id is not None:
        Builder.objects.filter(pk=builder_id).update(last_seen_on=timezone.now())


def builder_resume(*, builder_ids: list[int]) -> int:
    return Builder.objects.filter(pk__in=builder_ids).update(state=BuilderState.READY)


def local_pool_ensure() -> Builder:
    """The local pool and its one builder: this host's arch, LOCAL_BUILDER_SLOTS slots.

    Created on first use so a single machine builds out of the box; operators change
    slots, arches or state in the console afterwards.
    """
    pool, _ = BuilderPool.objects.get_or_create(
        name=LOCAL_POOL_NAME,
        defaults={"kind": PoolKind.LOCAL, "arches": [host_arch()], "max_builders": 1},
    )
    builder, _ = Builder.objects.get_or_create(
        name=f"local-{platform.node() or 'host'}",
        defaults={
            "pool": pool,
            "hostname": platform.node(),
            "arches": pool.arches,
            "slots": settings.LOCAL_BUILDER_SLOTS,
        },
    )
    return builder


def host_arch() -> str:
    return platform.machine() or "x86_64"
