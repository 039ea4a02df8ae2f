"""Enqueue Dramatiq messages only after the surrounding transaction commits."""

from functools import partial

from django.db import transaction


def send_on_commit(actor, *args, **kwargs) -> None:
    """Send `actor(*args, **kwargs)` once the current transaction has committed.

    A message sent inside a transaction may reach a worker before the row it names is
    visible, or name a row that a rollback removed; waiting for the commit avoids both.
    """
    transaction.on_commit(partial(actor.send, *args, **kwargs))
