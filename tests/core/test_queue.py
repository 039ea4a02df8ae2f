"""send_on_commit and the outbox: a message survives a broker that refuses it at commit time."""

import socket
from datetime import timedelta

import dramatiq
import pytest
from django.db import transaction
from django.utils import timezone
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from apps.core.models import OutboxMessage
from apps.core.queue import outbox_drain, send_on_commit

pytestmark = pytest.mark.django_db(transaction=True)
uses_stub_broker = pytest.mark.skipif(
    not isinstance(dramatiq.get_broker(), StubBroker),
    reason="reads the StubBroker's in-memory queue",
)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def down_broker():
    """A real Redis broker client whose server is not running: every send is refused."""
    broker = RedisBroker(url=f"redis://127.0.0.1:{closed_port()}/0", middleware=[])
    dramatiq.actor(note, broker=broker, actor_name="outbox_test_note", queue_name="default")
    return broker


def note(value: int) -> None:
    """An actor body; the tests look only at where its messages go."""


# On the configured broker's existing `default` queue: a new queue would add a consumer
# to the e2e tests' running worker.
LIVE_ACTOR = dramatiq.actor(note, actor_name="outbox_test_live", queue_name="default")


@pytest.fixture
def live_actor():
    """An actor on the configured broker, with an empty queue."""
    broker = dramatiq.get_broker()
    broker.flush("default")
    yield LIVE_ACTOR
    broker.flush("default")


def queued(broker, queue_name: str) -> list[dramatiq.Message]:
    messages = [dramatiq.Message.decode(raw) for raw in list(broker.queues[queue_name].queue)]
    return [m for m in messages if m.actor_name == "outbox_test_live"]


@uses_stub_broker
def test_message_is_sent_after_commit_and_its_row_removed(live_actor):
    with transaction.atomic():
        send_on_commit(live_actor, 7)
        # Recorded with the transaction's own rows, not yet sent.
        assert OutboxMessage.objects.get().args == [7]
        assert queued(dramatiq.get_broker(), "default") == []
    assert [m.args for m in queued(dramatiq.get_broker(), "default")] == [(7,)]
    assert not OutboxMessage.objects.exists()


def test_rolled_back_transaction_sends_nothing(down_broker):
    actor = down_broker.get_actor("outbox_test_note")
    with pytest.raises(RuntimeError), transaction.atomic():
        send_on_commit(actor, 1)
        raise RuntimeError("the request failed")
    assert not OutboxMessage.objects.exists()


def test_refused_message_stays_in_the_outbox_and_the_commit_stands(down_broker):
    actor = down_broker.get_actor("outbox_test_note")
    with transaction.atomic():  # no exception escapes the commit
        send_on_commit(actor, 42)
    kept = OutboxMessage.objects.get()
    assert (kept.actor_name, kept.args) == ("outbox_test_note", [42])


def test_refused_outside_a_transaction_is_kept_too(down_broker):
    send_on_commit(down_broker.get_actor("outbox_test_note"), 5)
    kept = OutboxMessage.objects.get()
    assert kept.args == [5] and kept.available_on <= timezone.now()


def test_drain_stops_at_the_first_refusal_and_keeps_the_rows(down_broker):
    past = timezone.now() - timedelta(minutes=1)
    for value in (1, 2):
        OutboxMessage.objects.create(actor_name="outbox_test_note", args=[value], available_on=past)
    assert outbox_drain(broker=down_broker) == 0
    assert OutboxMessage.objects.count() == 2
    # Released again for the next tick, not left claimed.
    assert not OutboxMessage.objects.filter(available_on__gt=timezone.now()).exists()


def test_drain_sends_due_messages_and_leaves_fresh_ones(live_actor):
    past = timezone.now() - timedelta(minutes=1)
    OutboxMessage.objects.create(actor_name="outbox_test_live", args=[1], available_on=past)
    fresh = OutboxMessage.objects.create(
        actor_name="outbox_test_live", args=[2], available_on=timezone.now() + timedelta(hours=1)
    )
    assert outbox_drain() == 1
    assert list(OutboxMessage.objects.all()) == [fresh]
    broker = dramatiq.get_broker()
    if isinstance(broker, StubBroker):
        assert [m.args for m in queued(broker, "default")] == [(1,)]


@uses_stub_broker
def test_an_actor_named_is_sent_like_the_actor_itself(live_actor):
    """Callers in other apps name the actor: nobody imports another app's actors module."""
    broker = dramatiq.get_broker()
    with transaction.atomic():
        send_on_commit("outbox_test_live", 7)
        assert OutboxMessage.objects.get().actor_name == "outbox_test_live"
    assert [m.args for m in queued(broker, "default")] == [(7,)]
    assert not OutboxMessage.objects.exists()


def test_an_unknown_actor_name_fails_where_it_is_sent():
    """A misspelt name fails in the caller's transaction, not later in a worker's log."""
    with pytest.raises(dramatiq.errors.ActorNotFound), transaction.atomic():
        send_on_commit("no_such_actor", 1)
    assert not OutboxMessage.objects.exists()


def test_every_app_registers_its_actors_for_sends_by_name():
    broker = dramatiq.get_broker()
    for name in ("run_task", "schedule_tasks", "reconcile", "publish_task", "delete_machine"):
        assert broker.get_actor(name).actor_name == name
