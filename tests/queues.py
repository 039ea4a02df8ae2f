"""Reading what the in-memory StubBroker holds (the `stub_broker` fixture), and running what
the outbox holds."""

import dramatiq

from apps.core.models import OutboxMessage
from apps.core.queue import actor_named


def queued_actor_names(broker, queue: str) -> list[str]:
    return [dramatiq.Message.decode(raw).actor_name for raw in list(broker.queues[queue].queue)]


def run_outbox_messages(actor_name: str) -> int:
    """Run the outbox's messages to `actor_name` here, as a worker would; how many ran.

    In a test inside a transaction (`django_db` without `transaction=True`) a message never
    leaves the outbox: what the request asked of the backend waits there.
    """
    messages = list(OutboxMessage.objects.filter(actor_name=actor_name).order_by("pk"))
    for message in messages:
        actor_named(actor_name).fn(*message.args, **message.kwargs)
    return len(messages)
