"""The transactional outbox: broker messages recorded in the transaction that needs them."""

from django.db import models
from django.utils import timezone


class OutboxMessage(models.Model):
    """A Dramatiq message committed with the rows it names, deleted once the broker has it.

    The broker may be down when a transaction commits; the row keeps the message until a
    worker's reconcile tick sends it (apps.core.queue.outbox_drain).
    """

    actor_name = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    kwargs = models.JSONField(default=dict)
    created_on = models.DateTimeField(default=timezone.now)
    # Before this time nobody else sends the message: its own transaction is still trying,
    # or a drainer has claimed it (a lease, so a drainer that dies releases it).
    available_on = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.actor_name}{tuple(self.args)}"
