"""Build state derived from task states, by Copr's rules."""

import pytest

from apps.builds.models import State
from apps.builds.states import derive_build_state


@pytest.mark.parametrize(
    ("canceled", "source", "chroots", "expected"),
    [
        (True, State.RUNNING, [], State.CANCELED),
        (False, State.PENDING, [], State.PENDING),
        (False, State.RUNNING, [], State.RUNNING),
        (False, State.FAILED, [], State.FAILED),
        (False, State.SUCCEEDED, [State.RUNNING, State.FAILED], State.RUNNING),
        (False, State.SUCCEEDED, [State.PENDING, State.SUCCEEDED], State.PENDING),
        (False, State.SUCCEEDED, [State.FAILED, State.SUCCEEDED], State.FAILED),
        (False, State.SUCCEEDED, [State.SUCCEEDED, State.SKIPPED], State.SUCCEEDED),
        (False, State.SUCCEEDED, [State.SKIPPED], State.SKIPPED),
        (False, State.SUCCEEDED, [State.WAITING, State.SUCCEEDED], State.PENDING),
        (False, State.SUCCEEDED, [State.CANCELED], State.CANCELED),
        (False, None, [], State.WAITING),
    ],
)
def test_derived_state(canceled, source, chroots, expected):
    assert derive_build_state(canceled=canceled, source_state=source, chroot_states=chroots) == (
        expected
    )
