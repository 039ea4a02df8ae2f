"""Enqueue Dramatiq messages only after the surrounding transaction commits, through an outbox.

Every message is a nudge to look at a row (actors are idempotent), so sending one twice is
harmless and at-least-once delivery is what we want: a message is recorded in the outbox
table inside the caller's transaction, sent after the commit, and its row deleted once the
broker has it. While the broker is down the rows stay; each worker's reconcile tick sends
them later (`outbox_drain`). A request that committed its rows has therefore succeeded,
whatever the broker's state.

Callers name the actor (`send_on_commit("publish_task", task.pk)`): the name is resolved at
send time, so no app imports another app's actors module (ARCHITECTURE.md, imports run one
way). Each app's AppConfig.ready imports its own actors, so every process knows every name.
"""

import logging
from datetime import timedelta

import dramatiq
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from apps.core.models import OutboxMessage

logger = logging.getLogger(__name__)
# How long a drainer leaves a fresh row to the transaction that wrote it (which sends it
# right after its commit), and how long a drainer's claim on a row lasts.
OUTBOX_GRACE_SECONDS = 10
OUTBOX_BATCH = 200


def send_on_commit(actor: str | dramatiq.Actor, *args, **kwargs) -> None:
    """Send `actor(*args, **kwargs)` once the current transaction has committed.

    `actor` is the actor's name (or the actor itself, from its own app).

    A message sent inside a transaction may reach a worker before the row it names is
    visible, or name a row that a rollback removed; waiting for the commit avoids both.
    Inside a transaction the message is also written to the outbox, so a broker outage at
    commit time delays it instead of losing it. Outside one, there is nothing to wait for:
    it is sent now, and kept in the outbox only if the broker refuses it.
    """
    actor = actor_named(actor)
    if not connection.in_atomic_block:
        if not _try_send(actor, args, kwargs):
            _outbox_store(actor, args, kwargs, available_on=timezone.now())
        return
    message = _outbox_store(actor, args, kwargs, available_on=_grace_end())
    transaction.on_commit(lambda: _send_and_forget(message.pk, actor, args, kwargs))


def send_later(actor: str, *args, delay_seconds: float) -> None:
    """Send `actor(*args)` after a delay, now, without the outbox.

    For worker code that holds back work it has already committed (the signing and
    createrepo spacing): the outbox has no delays, and a delayed nudge lost with its worker
    is re-sent by reconcile, which finds the row still waiting.
    """
    actor_named(actor).send_with_options(args=args, delay=int(delay_seconds * 1000) + 1)


def actor_named(actor: str | dramatiq.Actor) -> dramatiq.Actor:
    """The registered actor of that name (resolved when sending: the broker knows them all)."""
    if isinstance(actor, str):
        return dramatiq.get_broker().get_actor(actor)
    return actor


def outbox_drain(*, broker: dramatiq.Broker | None = None, limit: int = OUTBOX_BATCH) -> int:
    """Send the outbox's messages whose own transaction could not; returns how many were sent.

    Stops at the first refusal: the broker is still down, the next tick tries again.
    """
    now = timezone.now()
    due = list(
        OutboxMessage.objects.filter(available_on__lte=now).values_list("pk", flat=True)[:limit]
    )
    broker = broker or dramatiq.get_broker()
    sent = 0
    for message_id in due:
        # Claim first (compare-and-set), so two draining workers rarely send one message twice.
        claimed = OutboxMessage.objects.filter(pk=message_id, available_on__lte=now).update(
            available_on=_grace_end()
        )
        message = OutboxMessage.objects.filter(pk=message_id).first() if claimed else None
        if message is None:
            continue
        try:
            actor = broker.get_actor(message.actor_name)
        except dramatiq.errors.ActorNotFound:
            logger.error("outbox: message %s names an unknown actor; skipped", message)
            continue
        if not _try_send(actor, message.args, message.kwargs):
            OutboxMessage.objects.filter(pk=message_id).update(available_on=now)
            break
        OutboxMessage.objects.filter(pk=message_id).delete()
        sent += 1
    if sent:
        logger.info("outbox: sent %s message(s) that the broker had refused", sent)
    return sent


def _grace_end():
    return timezone.now() + timedelta(seconds=OUTBOX_GRACE_SECONDS)


def _outbox_store(actor, args, kwargs, *, available_on) -> OutboxMessage:
    return OutboxMessage.objects.create(
        actor_name=actor.actor_name, args=list(args), kwargs=kwargs, available_on=available_on
    )


def _send_and_forget(message_id: int, actor, args, kwargs) -> None:
    """After the commit: send, then drop the outbox row. Never raises into the request."""
    if not _try_send(actor, args, kwargs):
        return  # the row stays; a reconcile tick sends it once the broker is back
    try:
        OutboxMessage.objects.filter(pk=message_id).delete()
    except DatabaseError:
        # The message is out; the row only makes a drainer send it once more (harmless).
        logger.warning("outbox: could not delete sent message %s", message_id, exc_info=True)


def _try_send(actor, args, kwargs) -> bool:
    try:
        actor.send(*args, **kwargs)
    except Exception:  # any broker failure: connection refused, timeout, auth, full queue
        logger.warning(
            "broker refused %s%s; kept in the outbox", actor.actor_name, tuple(args), exc_info=True
        )
        return False
    return True
