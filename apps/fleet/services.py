"""Every write to the fleet: builder pools and builders."""

from apps.fleet.models import Builder, BuilderState


def builder_drain(*, builder_ids: list[int]) -> int:
    """Let builders finish what they run but take no new tasks. Returns the count."""
    return Builder.objects.filter(pk__in=builder_ids).update(state=BuilderState.DRAINING)


def builder_resume(*, builder_ids: list[int]) -> int:
    return Builder.objects.filter(pk__in=builder_ids).update(state=BuilderState.READY)
