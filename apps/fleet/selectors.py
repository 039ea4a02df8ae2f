"""Reads of the fleet: which architectures the enabled builder pools serve."""

from collections.abc import Iterable

from apps.core.errors import ServiceError
from apps.fleet.models import BuilderPool
from apps.fleet.services import LOCAL_POOL_NAME, host_arch


def served_arches() -> set[str]:
    """Arches of every enabled pool, whether or not one of its builders is up right now.

    The local pool is made on the first schedule (local_pool_ensure); until then it counts
    as what it will be, so a fresh install takes its first build.
    """
    arches = {
        arch
        for pool_arches in BuilderPool.objects.filter(enabled=True).values_list("arches", flat=True)
        for arch in pool_arches
    }
    if not BuilderPool.objects.filter(name=LOCAL_POOL_NAME).exists():
        arches.add(host_arch())
    return arches


def chroots_with_builders(chroots: list, *, requested: Iterable[str] = ()) -> list:
    """The chroots a builder can take, for build_submit.

    A chroot named outright whose arch no pool serves is refused: its task would wait
    forever. Chroots chosen by default (all of the project's) or by a wildcard keep only
    the served ones, so an aarch64 chroot in a project does not block its x86_64 builds.
    """
    served = served_arches()
    named = {name for name in requested if not any(c in name for c in "*?[")}
    for chroot in chroots:
        if chroot.name in named and chroot.arch not in served:
            raise ServiceError(unserved_message([chroot], served))
    kept = [chroot for chroot in chroots if chroot.arch in served]
    if not kept:
        raise ServiceError(unserved_message(chroots, served))
    return kept


def unserved_message(chroots: list, served: set[str]) -> str:
    arches = sorted({chroot.arch for chroot in chroots})
    names = ", ".join(chroot.name for chroot in chroots)
    return (
        f"No builder serves the architecture {', '.join(arches)} ({names}): a build there "
        f"would never start. This service builds for: {', '.join(sorted(served)) or 'nothing'}."
    )
