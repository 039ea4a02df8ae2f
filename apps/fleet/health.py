"""Builder health: the worker probes SSH builders so down hosts come back by themselves.

Runs in the worker only (the SSH client stays out of the web process). A task that loses
its host marks the builder down at once; the probe brings it back once it answers again,
and takes down a builder that stopped answering while idle.
"""

import logging
from datetime import timedelta

from django.utils import timezone

from apps.fleet.models import Builder, BuilderState, PoolKind
from apps.fleet.services import builder_mark_down, builder_seen
from apps.fleet.transports import ssh_transport
from builders.transports import BuilderLost, BuilderRefused

logger = logging.getLogger(__name__)
PROBE_INTERVAL_SECONDS = 60  # how often an SSH builder is checked between tasks


def builders_to_probe():
    """SSH builders not seen for a while, of enabled pools; drained ones are left alone."""
    due = timezone.now() - timedelta(seconds=PROBE_INTERVAL_SECONDS)
    return Builder.objects.select_related("pool").filter(
        pool__enabled=True,
        pool__kind=PoolKind.SSH,
        state__in=[BuilderState.READY, BuilderState.DOWN],
        last_seen_on__lt=due,
    )


def builder_probe(builder: Builder) -> bool:
    """Check one builder; a down one that answers is ready again. True when it answered."""
    try:
        version = ssh_transport(builder).probe()
    except (BuilderLost, BuilderRefused) as problem:
        if builder_mark_down(builder_id=builder.pk, reason=problem.reason):
            logger.warning("builder %s is down: %s", builder.name, problem.reason)
        Builder.objects.filter(pk=builder.pk).update(last_seen_on=timezone.now())
        return False
    builder_seen(builder_id=builder.pk, runner_version=version)
    back = Builder.objects.filter(pk=builder.pk, state=BuilderState.DOWN).update(
        state=BuilderState.READY, state_reason=""
    )
    if back:
        logger.info("builder %s answers again", builder.name)
    return True
