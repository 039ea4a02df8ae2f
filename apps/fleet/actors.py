"""Dramatiq actors for the fleet: thin, take ids, harmless when run twice."""

import dramatiq

from apps.fleet import health
from apps.fleet.models import Builder


@dramatiq.actor(queue_name="default", max_retries=0, time_limit=120_000)
def probe_builder(builder_id: int) -> None:
    """Check that an SSH builder answers; bring a down one back when it does."""
    builder = Builder.objects.select_related("pool").filter(pk=builder_id).first()
    if builder is not None:
        health.builder_probe(builder)
