"""Builder health against real SSH hosts: probes take silent hosts down and bring them back."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.fleet.health import builder_probe, builders_to_probe
from apps.fleet.models import Builder, BuilderPool, BuilderState, PoolKind
from apps.fleet.services import ssh_pool_sync
from builders.transports.ssh import runner_version

pytestmark = pytest.mark.django_db


def test_a_probe_takes_a_silent_host_down_and_brings_it_back(ssh_hosts):
    (host,) = ssh_hosts(1)
    pool = BuilderPool.objects.create(
        name="ssh",
        kind=PoolKind.SSH,
        arches=["x86_64"],
        config={"hosts": [host.pool_host_config()]},
    )
    (builder,) = ssh_pool_sync(pool=pool)
    host.kill_everything()

    assert builder_probe(builder) is False
    builder.refresh_from_db()
    assert builder.state == BuilderState.DOWN
    assert "Connection refused" in builder.state_reason

    host.start_sshd()
    assert builder_probe(builder) is True
    builder.refresh_from_db()
    assert (builder.state, builder.state_reason) == (BuilderState.READY, "")
    assert builder.runner_version == runner_version()


def test_only_ssh_builders_not_seen_lately_are_probed():
    pool = BuilderPool.objects.create(name="ssh", kind=PoolKind.SSH, arches=["x86_64"])
    old = timezone.now() - timedelta(minutes=5)
    stale = Builder.objects.create(pool=pool, name="stale", last_seen_on=old)
    Builder.objects.create(pool=pool, name="fresh")
    Builder.objects.create(pool=pool, name="drained", state=BuilderState.DRAINING, last_seen_on=old)
    local = BuilderPool.objects.create(name="here", kind=PoolKind.LOCAL)
    Builder.objects.create(pool=local, name="local", last_seen_on=old)

    assert list(builders_to_probe()) == [stale]
