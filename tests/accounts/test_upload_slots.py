"""Upload slots: at most `limit` per user in flight, given back, and lapsing when not."""

import datetime
import threading

import pytest
from django.db import connection

from apps.accounts.models import UploadSlot
from apps.accounts.services import upload_slot_release, upload_slot_take
from tests.factories import UserFactory

MINUTE = datetime.timedelta(minutes=1)


@pytest.mark.django_db
def test_a_user_gets_at_most_limit_slots_and_a_released_one_back() -> None:
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")

    first = upload_slot_take(user=alice, limit=2, lifetime=MINUTE)
    second = upload_slot_take(user=alice, limit=2, lifetime=MINUTE)

    assert first and second
    assert upload_slot_take(user=alice, limit=2, lifetime=MINUTE) is None
    assert upload_slot_take(user=bob, limit=2, lifetime=MINUTE)  # each user counts alone
    upload_slot_release(slot_id=first)
    assert upload_slot_take(user=alice, limit=2, lifetime=MINUTE)


@pytest.mark.django_db
def test_the_slot_of_a_killed_process_lapses() -> None:
    alice = UserFactory(username="alice")
    # A process killed mid-upload never releases its slot.
    upload_slot_take(user=alice, limit=1, lifetime=datetime.timedelta(seconds=-1))

    assert upload_slot_take(user=alice, limit=1, lifetime=MINUTE)
    assert UploadSlot.objects.filter(user=alice).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_takes_of_one_user_never_exceed_the_limit() -> None:
    alice = UserFactory(username="alice")
    taken = []
    start = threading.Barrier(6)

    def take() -> None:
        start.wait()
        try:
            taken.append(upload_slot_take(user=alice, limit=2, lifetime=MINUTE))
        finally:
            connection.close()

    threads = [threading.Thread(target=take) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len([slot for slot in taken if slot]) == 2
    assert UploadSlot.objects.filter(user=alice).count() == 2
