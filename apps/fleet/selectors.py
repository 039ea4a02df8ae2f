"""Reads of the fleet: which architectures the pools serve, what each builder runs now."""

from django.db.models import Prefetch

from apps.core.errors import ServiceError
from apps.fleet.models import Builder, BuilderPool, BuilderStateChange
from apps.fleet.services import LOCAL_POOL_NAME, host_arch


def served_arches() -> set[str]:
    """Arches of every enabled pool, whether or not one of its builders is up right now.

    The local pool is made on the first schedule (local_pool_ensure); until then it counts
    as what it will be, so a fresh install takes its first build.
    """
    # The local pool's existence first: when the scheduler makes it between the two reads,
    # the second one sees it (the other order would read no pool at all).
    local_pool_made = BuilderPool.objects.filter(name=LOCAL_POOL_NAME).exists()
    arches = {
        arch
        for pool in BuilderPool.objects.filter(enabled=True).only("kind", "arch", "arches")
        for arch in pool.served_arches
    }
    if not local_pool_made:
        arches.add(host_arch())
    return arches


def chroots_checked_for_builders(chroots: list) -> list:
    """The chroots of a build, for build_submit: refused when no builder serves any of them
    (the build could never do anything).

    The others stay, those of an unserved arch included: their tasks end at once with the
    reason (apps.builds.services.chroot_tasks_create), so a multi-chroot build reports every
    chroot it was asked for instead of silently building fewer.
    """
    served = served_arches()
    if not any(chroot.arch in served for chroot in chroots):
        raise ServiceError(unserved_message(chroots, served))
    return chroots


def unserved_message(chroots: list, served: set[str]) -> str:
    arches = sorted({chroot.arch for chroot in chroots})
    names = ", ".join(chroot.name for chroot in chroots)
    return (
        f"No builder serves the architecture {', '.join(arches)} ({names}): a build there "
        f"would never start. This service builds for: {', '.join(sorted(served)) or 'nothing'}."
    )


def slot_holding_tasks():
    """Tasks holding a builder slot (signing and publishing no longer do), oldest first."""
    # builds sits above fleet and declares the relation (BuildTask.builder, related_name
    # "tasks"): the task model is reached through it, never imported from here.
    tasks = Builder.tasks.rel.related_model
    return tasks.objects.before_publishing().select_related("chroot").order_by("pk")


# State changes of each builder the status page lists.
RECENT_STATE_CHANGES = 5


def builders_with_current_tasks():
    """Builders, each with `current`: the tasks in its slots (one query for all of them)."""
    current = Prefetch("tasks", queryset=slot_holding_tasks(), to_attr="current")
    return Builder.objects.prefetch_related(current)


def builders_with_history():
    """builders_with_current_tasks, each also with `history`: its latest state changes."""
    changes = BuilderStateChange.objects.order_by("-changed_on", "-pk")
    return builders_with_current_tasks().prefetch_related(
        Prefetch("state_changes", queryset=changes[:RECENT_STATE_CHANGES], to_attr="history")
    )


def pools_with_builders():
    """Every pool, its builders and their current tasks, in three queries however many.

    Written over Builder rows whatever the pool's kind: a local pool's one builder, an ssh
    pool's hosts and the builders vm and command pools get all read the same way.
    """
    builders = Prefetch("builders", queryset=builders_with_history().order_by("name"))
    return BuilderPool.objects.order_by("name").prefetch_related(builders)
