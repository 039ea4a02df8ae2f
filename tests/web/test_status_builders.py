"""The public builders page (`/status/builders/`): every pool kind, nothing of pool configs,
a fixed number of queries however many builders there are."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.builds.models import Build, BuildTask, State
from apps.fleet.models import Builder, BuilderPool, BuilderState, PoolKind
from apps.fleet.services import local_pool_ensure, ssh_pool_sync
from tests.factories import BuildFactory, BuildTaskFactory, chroot

pytestmark = pytest.mark.django_db

KEY_PATH = "/etc/coprsite/keys/builder_ed25519"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeHostKeyOnlyForThePageTest0000000000"
IMAGE = "/var/lib/coprsite/images/fedora-43-base.qcow2"
NEW_COMMAND = "/usr/local/libexec/builder-new --token sekrit-cloud-token"
DELETE_COMMAND = "/usr/local/libexec/builder-delete --token sekrit-cloud-token"
# Whatever of a pool's config would help an attacker: none of it may reach the page.
SECRETS = (KEY_PATH, HOST_KEY, "198.18.9.7", "builder-new", "builder-delete", "sekrit", IMAGE)


def ssh_pool() -> BuilderPool:
    pool = BuilderPool.objects.create(
        name="remote",
        kind=PoolKind.SSH,
        arches=["x86_64"],
        config={
            "hosts": [
                {
                    "name": "rack1",
                    "address": "198.18.9.7",
                    "user": "copr",
                    "key_path": KEY_PATH,
                    "known_host_key": HOST_KEY,
                    "slots": 2,
                }
            ]
        },
    )
    ssh_pool_sync(pool=pool)
    return pool


def pool_with_builder(name: str, kind: str, config: dict, **builder_fields) -> Builder:
    """A vm or command pool and the builder row its allocator keeps (slots: max_builders)."""
    pool = BuilderPool.objects.create(
        name=name, kind=kind, arches=["x86_64"], max_builders=3, config=config
    )
    return Builder.objects.create(
        pool=pool, name=f"{name}-slots", arches=pool.arches, slots=pool.max_builders,
        **builder_fields,
    )  # fmt: skip


@pytest.fixture
def fleet():
    """A local, an ssh, a vm and a command pool, with a task running on the ssh builder."""
    local = local_pool_ensure()
    remote = ssh_pool().builders.get()
    Builder.objects.filter(pk=remote.pk).update(runner_version="runner-7")
    vm = pool_with_builder("vms", PoolKind.VM, {"image": IMAGE, "memory_mib": 2048})
    command = pool_with_builder(
        "cloud",
        PoolKind.COMMAND,
        {"new": NEW_COMMAND, "delete": DELETE_COMMAND},
        state=BuilderState.DOWN,
        state_reason=f"{NEW_COMMAND} exited with 1",
    )
    task = BuildTaskFactory(
        chroot=chroot("fedora-43-x86_64"),
        state=State.RUNNING,
        build__state=State.RUNNING,
        builder=remote,
    )
    return {"local": local, "remote": remote, "vm": vm, "command": command, "task": task}


def test_every_pool_kind_and_builder_is_shown(client, fleet):
    response = client.get(reverse("status-builders"))

    assert response.status_code == 200
    page = response.content.decode()
    assert '<a href="/status/builders/" class="active">Builders</a>' in page
    pools = {pool.name: [b.name for b in pool.builders.all()] for pool in response.context["pools"]}
    assert pools == {
        "cloud": ["cloud-slots"],
        "local": [fleet["local"].name],
        "remote": ["remote-rack1"],
        "vms": ["vms-slots"],
    }
    for heading in ("local · local", "remote · ssh", "vms · vm", "cloud · command"):
        assert heading.replace(" · ", ' <span class="muted">· ', 1) in page
    task = fleet["task"]
    assert f'<a href="/builds/{task.build_id}/">{task.build_id}</a> fedora-43-x86_64' in page
    assert '<td class="num">1 / 2</td>' in page  # the ssh host: one of its two slots busy
    assert '<td class="num">0 / 3</td>' in page  # the vm pool's builder: max_builders slots
    assert "runner-7" in page
    assert 'class="state state-down">down</span>' in page
    assert "ago</time>" in page


def test_no_pool_config_reaches_anonymous_users(client, fleet):
    page = client.get(reverse("status-builders")).content.decode()

    assert [secret for secret in SECRETS if secret in page] == []


def test_operators_see_why_a_builder_is_down(client, fleet, staff_user):
    client.force_login(staff_user)

    page = client.get(reverse("status-builders")).content.decode()

    assert f"{NEW_COMMAND} exited with 1" in page


def test_a_fresh_install_has_no_pool_yet(client, db):
    page = client.get(reverse("status-builders")).content.decode()

    assert "No builder pools yet" in page


def page_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("status-builders")).status_code == 200
    return len(queries)


def busy_builders(count: int) -> None:
    """`count` more builders, in a vm pool of their own, each running a task."""
    pool = BuilderPool.objects.create(name="big", kind=PoolKind.VM, arches=["x86_64"])
    builders = Builder.objects.bulk_create(
        Builder(pool=pool, name=f"big-{number}", slots=2) for number in range(count)
    )
    first = BuildFactory(state=State.RUNNING)
    builds = Build.objects.bulk_create(
        Build(
            project=first.project,
            project_dirname=first.project_dirname,
            submitter=first.submitter,
            source_type=first.source_type,
            state=State.RUNNING,
        )
        for _ in builders
    )
    BuildTask.objects.bulk_create(
        BuildTask(build=build, chroot=chroot(), state=State.RUNNING, builder=builder)
        for build, builder in zip(builds, builders, strict=True)
    )


def test_the_page_costs_the_same_queries_for_four_builders_or_forty(client, fleet):
    few = page_queries(client)
    busy_builders(36)

    many = page_queries(client)

    assert many == few
    # The queue counts on the tabs, pools, builders, their tasks, their state histories;
    # no session for anonymous.
    assert many <= 5
