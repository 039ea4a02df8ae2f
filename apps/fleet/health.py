"""Builder health: the worker probes builders so down ones come back by themselves.

Runs in the worker only (the SSH client stays out of the web process). A task that loses
its host marks the builder down at once; the probe brings it back once it answers again,
takes down an SSH builder that stopped answering while idle, and sweeps the jobs that
workers which died left on it. A vm or command pool has
no idle machine to ask: only when it is down does the probe make one, log in and delete it.
"""

import logging
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from apps.fleet.models import MACHINE_POOL_KINDS, Builder, BuilderState, PoolKind
from apps.fleet.selectors import slot_holding_tasks
from apps.fleet.services import builder_back, builder_mark_down, builder_seen
from apps.fleet.transports import machine_transport, ssh_transport
from builders.transports import BuilderLost, BuilderRefused

logger = logging.getLogger(__name__)
PROBE_INTERVAL_SECONDS = 60  # how often an SSH builder is checked between tasks


def builders_to_probe():
    """Builders not seen for a while, of enabled pools; drained ones are left alone."""
    due = timezone.now() - timedelta(seconds=PROBE_INTERVAL_SECONDS)
    ssh = Q(pool__kind=PoolKind.SSH, state__in=[BuilderState.READY, BuilderState.DOWN])
    machines = Q(pool__kind__in=MACHINE_POOL_KINDS, state=BuilderState.DOWN)
    return Builder.objects.select_related("pool").filter(
        ssh | machines, pool__enabled=True, last_seen_on__lt=due
    )


def running_task_ids(builder: Builder) -> list[str]:
    """The tasks whose jobs the builder runs now: the probe sweeps every other job there."""
    return [task.task_id for task in slot_holding_tasks().filter(builder=builder)]


def builder_probe(builder: Builder) -> bool:
    """Check one builder; a down one that answers is ready again. True when it answered."""
    try:
        if builder.pool.kind == PoolKind.SSH:
            version = ssh_transport(builder).probe(keep_jobs=running_task_ids(builder))
        else:
            version = machine_transport(builder.pool, task_id=None).probe()
    except (BuilderLost, BuilderRefused) as problem:
        if builder_mark_down(builder_id=builder.pk, reason=problem.reason):
            logger.warning("builder %s is down: %s", builder.name, problem.reason)
        Builder.objects.filter(pk=builder.pk).update(last_seen_on=timezone.now())
        return False
    builder_seen(builder_id=builder.pk, runner_version=version)
    if builder_back(builder_id=builder.pk):
        logger.info("builder %s answers again", builder.name)
    return True
