"""SSH pools: builders from the pool's config, scheduling across pools, builder health."""

import pytest
from django.test import override_settings

from apps.builds.execution import task_lost
from apps.builds.models import BuildTask, State
from apps.builds.scheduler import schedule_pending_tasks
from apps.fleet.models import Builder, BuilderPool, BuilderState, PoolKind
from apps.fleet.services import (
    PoolConfigError,
    builder_resume,
    local_pool_ensure,
    ssh_pool_sync,
)
from apps.fleet.transports import transport_for
from builders.transports import BuilderLost, BuilderRefused
from builders.transports.local import LocalTransport
from builders.transports.ssh import SshTransport
from tests.builds.test_scheduler import pending_task
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOnly+A+Test+Key+Not+Used+For+Anything+At+All"


def host(name: str, **fields) -> dict:
    return {
        "name": name,
        "address": f"198.18.7.{len(name)}",
        "key_path": "/etc/coprsite/builder_key",
        "known_host_key": HOST_KEY,
        **fields,
    }


def ssh_pool(*hosts: dict, **fields) -> BuilderPool:
    return BuilderPool.objects.create(
        name=fields.pop("name", "remote"),
        kind=PoolKind.SSH,
        arches=["x86_64"],
        config={"hosts": list(hosts)},
        **fields,
    )


def without_local_pool() -> None:
    local_pool_ensure()
    BuilderPool.objects.filter(kind=PoolKind.LOCAL).update(enabled=False)


def test_each_host_becomes_a_builder_with_its_arches_and_slots():
    pool = ssh_pool(host("a"), host("b", arches=["aarch64"], slots=3))

    ssh_pool_sync(pool=pool)

    builders = {b.name: (b.hostname, b.arches, b.slots) for b in pool.builders.all()}
    assert builders == {
        "remote-a": ("198.18.7.1", ["x86_64"], 1),
        "remote-b": ("198.18.7.1", ["aarch64"], 3),
    }


def test_a_host_removed_from_the_config_is_drained():
    pool = ssh_pool(host("a"), host("b"))
    ssh_pool_sync(pool=pool)
    pool.config = {"hosts": [host("a")]}
    pool.save()

    ssh_pool_sync(pool=pool)

    gone = Builder.objects.get(name="remote-b")
    assert gone.state == BuilderState.DRAINING
    assert gone.state_reason == "its host is no longer in the pool's config"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, 'config needs "hosts"'),
        ({"hosts": [{"name": "a"}]}, "missing address, key_path, known_host_key"),
        ({"hosts": [host("a", known_host_key="yes")]}, "known_host_key is a public key"),
        ({"hosts": [host("a", port="22")]}, "port must be a number"),
        ({"hosts": [host("a", slots=0)]}, "slots must be a positive number"),
        ({"hosts": [host("a"), host("a")]}, "two hosts are named 'a'"),
    ],
)
def test_a_broken_config_is_refused_with_the_reason(config, message):
    pool = BuilderPool.objects.create(name="bad", kind=PoolKind.SSH, config=config)

    with pytest.raises(PoolConfigError, match=message):
        ssh_pool_sync(pool=pool)
    assert not pool.builders.exists()


def test_tasks_go_to_ready_builders_of_any_enabled_pool_one_per_slot():
    without_local_pool()
    ssh_pool_sync(pool=ssh_pool(host("a"), host("b")))
    project = ProjectFactory()
    tasks = [pending_task(project) for _ in range(3)]

    assigned = schedule_pending_tasks()

    assert assigned == [tasks[0].pk, tasks[1].pk]
    on = dict(BuildTask.objects.filter(pk__in=assigned).values_list("pk", "builder__name"))
    assert on == {tasks[0].pk: "remote-a", tasks[1].pk: "remote-b"}


def test_down_builders_and_disabled_pools_get_nothing():
    without_local_pool()
    ssh_pool_sync(pool=ssh_pool(host("a")))
    Builder.objects.filter(name="remote-a").update(state=BuilderState.DOWN)
    vm_pool = BuilderPool.objects.create(
        name="vms", kind=PoolKind.VM, arches=["x86_64"], enabled=False
    )
    Builder.objects.create(pool=vm_pool, name="vm-1", arches=["x86_64"])
    pending_task(ProjectFactory())

    assert schedule_pending_tasks() == []


def test_the_pool_kind_picks_the_transport():
    (builder,) = ssh_pool_sync(pool=ssh_pool(host("a", port=2222, user="builder")))
    vm_pool = BuilderPool.objects.create(name="vms", kind=PoolKind.VM, arches=["x86_64"])

    transport = transport_for(builder)

    assert isinstance(transport, SshTransport)
    assert (transport.host.address, transport.host.port, transport.host.user) == (
        "198.18.7.1",
        2222,
        "builder",
    )
    assert isinstance(transport_for(local_pool_ensure()), LocalTransport)
    with pytest.raises(BuilderRefused, match='config needs "image"'):
        transport_for(Builder.objects.create(pool=vm_pool, name="vm-1"))


@override_settings(MAX_TASK_ATTEMPTS=2)
def test_a_lost_builder_is_marked_down_and_its_task_queued_once_then_failed(tmp_path):
    without_local_pool()
    ssh_pool_sync(pool=ssh_pool(host("a"), host("b")))
    task = pending_task(ProjectFactory())
    schedule_pending_tasks()
    task.refresh_from_db()
    first = task.builder
    BuildTask.objects.filter(pk=task.pk).update(state=State.RUNNING)

    lost = BuilderLost("builder remote-a: the connection broke during the build")
    task_lost(task, tmp_path, lost)

    task.refresh_from_db()
    first.refresh_from_db()
    assert (task.state, task.attempt, task.builder) == (State.PENDING, 1, None)
    assert task.state_reason.startswith("builder lost (builder remote-a: the connection broke")
    assert first.state == BuilderState.DOWN
    assert "connection broke" in first.state_reason
    # The next attempt goes to the other host; losing that one too fails the task.
    assert schedule_pending_tasks() == [task.pk]
    task.refresh_from_db()
    assert task.builder.name == "remote-b"
    BuildTask.objects.filter(pk=task.pk).update(state=State.RUNNING)

    task_lost(task, tmp_path, BuilderLost("builder remote-b: no answer"))

    task.refresh_from_db()
    assert task.state == State.FAILED
    assert task.state_reason == "builder lost: builder remote-b: no answer; 2 attempt(s) made"
    assert "builder lost" in (tmp_path / "backend.log").read_text()
    builder_resume(builder_ids=[first.pk])
    first.refresh_from_db()
    assert (first.state, first.state_reason) == (BuilderState.READY, "")
