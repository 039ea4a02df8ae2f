"""Dramatiq actors for the fleet: thin, take ids, harmless when run twice."""

import dramatiq

from apps.fleet import health
from apps.fleet.machines import machine_delete_leaked, machine_make_ahead
from apps.fleet.models import Builder


@dramatiq.actor(queue_name="default", max_retries=0, time_limit=120_000)
def probe_builder(builder_id: int) -> None:
    """Check that a builder answers; bring a down one back when it does."""
    builder = Builder.objects.select_related("pool").filter(pk=builder_id).first()
    if builder is not None:
        health.builder_probe(builder)


@dramatiq.actor(queue_name="default", max_retries=0, time_limit=900_000)
def delete_machine(machine_id: int) -> None:
    """Run the pool's `delete` for a machine its worker left behind (see machines_reconcile)."""
    machine_delete_leaked(machine_id)


@dramatiq.actor(queue_name="default", max_retries=0, time_limit=900_000)
def make_machine_ahead(machine_id: int) -> None:
    """Run the pool's `new` for a machine kept ready for tasks (see machines_to_make_ahead)."""
    machine_make_ahead(machine_id)
