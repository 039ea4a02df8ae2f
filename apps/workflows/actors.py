"""Dramatiq actors of the cross-app operations: thin, harmless when run twice."""

import dramatiq

from apps.workflows import reconcile as workflows


@dramatiq.actor(queue_name="default", max_retries=0, time_limit=120_000)
def reconcile() -> None:
    """Requeue tasks of dead workers and re-nudge work that waits too long."""
    workflows.reconcile_all()
