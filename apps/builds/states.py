"""Build state derived from its tasks, the way Copr derives it (spec §3.6)."""

from collections.abc import Iterable

from apps.builds.models import State

# Copr's StatusEnum numbers (copr_common.enums): `monitor` reports them beside the names, and
# the bus messages (apps/builds/announce.py) carry them.
STATUS_NUMBERS = {
    "failed": 0, "succeeded": 1, "canceled": 2, "running": 3, "pending": 4, "skipped": 5,
    "starting": 6, "importing": 7, "forked": 8, "waiting": 9, "unknown": 1000,
}  # fmt: skip
SOURCE_STATES_SHOWN = (State.STARTING, State.PENDING, State.RUNNING, State.IMPORTING, State.FAILED)
CHROOT_STATE_ORDER = (
    State.RUNNING,
    State.STARTING,
    State.PENDING,
    State.FAILED,
    State.SUCCEEDED,
    State.SKIPPED,
    State.FORKED,
)


def derive_build_state(*, canceled: bool, source_state: str | None, chroot_states: Iterable[str]):
    """The one state a build shows for its source task and its chroot tasks."""
    if canceled:
        return State.CANCELED
    if source_state in SOURCE_STATES_SHOWN:
        return State(source_state)
    present = set(chroot_states)
    if State.WAITING in present:
        # A chroot task still waiting (e.g. on its batch) shows the build as pending.
        present.add(State.PENDING)
    for state in CHROOT_STATE_ORDER:
        if state in present:
            return state
    if State.CANCELED in present:
        return State.CANCELED
    return State.WAITING if source_state is None else State.SUCCEEDED
