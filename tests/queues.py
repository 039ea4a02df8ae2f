"""Reading what the in-memory StubBroker holds (the `stub_broker` fixture)."""

import dramatiq


def queued_actor_names(broker, queue: str) -> list[str]:
    return [dramatiq.Message.decode(raw).actor_name for raw in list(broker.queues[queue].queue)]
