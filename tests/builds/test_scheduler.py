"""Scheduling: priorities, fair share between owners, arch matching, slot limits."""

from datetime import timedelta

import pytest
from django.db.models import F
from django.test import override_settings

from apps.builds.models import Batch, BuildTask, Priority, State
from apps.builds.scheduler import schedule_pending_tasks
from apps.fleet.models import Builder, BuilderPool, PoolKind
from apps.fleet.services import local_pool_ensure, machine_pool_sync
from apps.workflows.reconcile import reconcile_all
from tests.factories import BuildFactory, BuildTaskFactory, ProjectFactory, chroot

pytestmark = pytest.mark.django_db


def pending_task(
    project, *, priority=Priority.NORMAL, chroot_name="fedora-43-x86_64", source=False
):
    build = BuildFactory(project=project, state=State.PENDING)
    return BuildTaskFactory(
        build=build,
        chroot=None if source else chroot(chroot_name),
        state=State.PENDING,
        priority=Priority.SOURCE if source else priority,
        owner_key=project.ownername,
    )


def set_slots(count: int) -> Builder:
    builder = local_pool_ensure()
    Builder.objects.filter(pk=builder.pk).update(slots=count, arches=["x86_64"])
    return builder


def test_slots_limit_assignments():
    set_slots(2)
    project = ProjectFactory()
    tasks = [pending_task(project) for _ in range(5)]
    assigned = schedule_pending_tasks()
    assert assigned == [tasks[0].pk, tasks[1].pk]
    assert BuildTask.objects.filter(state=State.STARTING).count() == 2
    assert schedule_pending_tasks() == []  # no free slot until one finishes


def test_source_then_normal_then_background():
    set_slots(1)
    project = ProjectFactory()
    background = pending_task(project, priority=Priority.BACKGROUND)
    normal = pending_task(project)
    source = pending_task(project, source=True)
    order = []
    for _ in range(3):
        order += schedule_pending_tasks()
        BuildTask.objects.filter(state=State.STARTING).update(state=State.SUCCEEDED)
    assert order == [source.pk, normal.pk, background.pk]


def wait(seconds: int) -> None:
    """Let `seconds` pass for every queued task (moves their queue times back)."""
    BuildTask.objects.update(queued_on=F("queued_on") - timedelta(seconds=seconds))


def finish_started() -> None:
    BuildTask.objects.filter(state=State.STARTING).update(state=State.SUCCEEDED)


@override_settings(SCHEDULER_AGING_SECONDS=120)
def test_stream_of_source_tasks_cannot_hold_back_an_earlier_rpm_task():
    set_slots(1)
    project = ProjectFactory()
    rpm = pending_task(project)
    waited = None
    # Ten minutes of uploads arriving faster than the one slot takes them (two every 20 s).
    for tick in range(30):
        pending_task(project, source=True)
        pending_task(project, source=True)
        taken = schedule_pending_tasks()
        finish_started()
        if rpm.pk in taken:
            waited = tick * 20
            break
        wait(20)
    assert waited is not None, "the RPM task was overtaken for ten minutes"
    assert waited <= 120 + 20, f"overtaken for {waited} s, beyond the 120 s bound"


@override_settings(SCHEDULER_AGING_SECONDS=120)
def test_priority_still_orders_tasks_within_the_bound():
    set_slots(1)
    project = ProjectFactory()
    rpm = pending_task(project)
    wait(60)
    source = pending_task(project, source=True)
    assert schedule_pending_tasks() == [source.pk]
    finish_started()
    assert schedule_pending_tasks() == [rpm.pk]


@override_settings(SCHEDULER_AGING_SECONDS=120)
def test_overdue_tasks_go_in_queued_order_whatever_their_kind():
    set_slots(1)
    project = ProjectFactory()
    background = pending_task(project, priority=Priority.BACKGROUND)
    wait(60)
    normal = pending_task(project)
    wait(60)
    source = pending_task(project, source=True)
    wait(200)  # all three overdue now
    fresh_source = pending_task(project, source=True)
    order = []
    for _ in range(4):
        order += schedule_pending_tasks()
        finish_started()
    assert order == [background.pk, normal.pk, source.pk, fresh_source.pk]


@override_settings(SCHEDULER_AGING_SECONDS=120)
def test_overdue_tasks_keep_fair_share_between_owners():
    set_slots(2)
    busy, idle = ProjectFactory(), ProjectFactory()
    first = pending_task(busy)
    assert schedule_pending_tasks() == [first.pk]
    older = [pending_task(busy) for _ in range(3)]
    wait(60)
    idle_task = pending_task(idle)
    wait(200)
    assert schedule_pending_tasks() == [idle_task.pk], "the owner with a running task waits"
    assert BuildTask.objects.get(pk=older[0].pk).state == State.PENDING


def test_fair_share_between_owners():
    set_slots(2)
    busy, newcomer = ProjectFactory(), ProjectFactory()
    for _ in range(50):
        pending_task(busy)
    late = pending_task(newcomer)
    assigned = schedule_pending_tasks()
    assert late.pk in assigned, "the second owner's one build must not wait for 50 others"


def test_running_owner_yields_to_idle_owner():
    set_slots(2)
    busy, idle = ProjectFactory(), ProjectFactory()
    first = pending_task(busy)
    assert schedule_pending_tasks() == [first.pk]
    more_busy = [pending_task(busy) for _ in range(3)]
    idle_task = pending_task(idle)
    assert schedule_pending_tasks() == [idle_task.pk]
    assert all(
        t.state == State.PENDING for t in BuildTask.objects.filter(pk__in=[t.pk for t in more_busy])
    )


def test_unserved_arch_waits_with_reason():
    set_slots(2)
    project = ProjectFactory(chroot_names=["fedora-43-aarch64"])
    task = pending_task(project, chroot_name="fedora-43-aarch64")
    assert schedule_pending_tasks() == []
    task.refresh_from_db()
    assert task.state == State.PENDING
    assert "no builder pool serves this architecture" in task.state_reason


def test_unserved_arch_gets_its_reason_from_reconcile_while_all_slots_are_busy():
    set_slots(1)
    busy = pending_task(ProjectFactory())
    assert schedule_pending_tasks() == [busy.pk]
    project = ProjectFactory(chroot_names=["fedora-43-aarch64"])
    task = pending_task(project, chroot_name="fedora-43-aarch64")
    assert schedule_pending_tasks() == []
    reconcile_all()
    task.refresh_from_db()
    assert "no builder pool serves this architecture" in task.state_reason


def test_drained_builder_takes_nothing():
    builder = set_slots(2)
    Builder.objects.filter(pk=builder.pk).update(state="draining")
    pending_task(ProjectFactory())
    assert schedule_pending_tasks() == []


@override_settings(LOCAL_BUILDER_SLOTS=3)
def test_local_pool_created_with_configured_slots():
    builder = local_pool_ensure()
    assert builder.slots == 3 and builder.pool.kind == "local"


def machine_pool(name: str, *, tags: list[str], arches=("x86_64",)) -> Builder:
    """A command pool's builder; its `new` never runs here: scheduling only picks it."""
    pool = BuilderPool.objects.create(
        name=name,
        kind=PoolKind.COMMAND,
        arches=list(arches),
        tags=tags,
        config={"new": "false", "delete": "true"},
    )
    return machine_pool_sync(pool=pool)


def test_a_project_that_asks_for_a_tag_builds_only_on_a_pool_with_it():
    BuilderPool.objects.filter(pk=set_slots(0).pool_id).update(enabled=False)
    plain = machine_pool("plain", tags=[])
    tagged = machine_pool("cloud-b", tags=["cloud_b"])
    project = ProjectFactory(builder_tags=["cloud_b", "arch_x86_64"])
    task = pending_task(project)
    # The tagged pool's builder down: the task waits rather than go to the plain pool.
    Builder.objects.filter(pk=tagged.pk).update(state="down")
    assert schedule_pending_tasks() == []

    Builder.objects.filter(pk=tagged.pk).update(state="ready")
    assert schedule_pending_tasks() == [task.pk]
    task.refresh_from_db()
    assert task.builder == tagged and plain.pk != tagged.pk


def test_the_arch_tag_comes_from_the_pools_arches():
    BuilderPool.objects.filter(pk=set_slots(0).pool_id).update(enabled=False)
    machine_pool("arm", tags=["cloud_b"], arches=["aarch64"])
    x86 = machine_pool("x86", tags=["cloud_b"])
    untagged_project_task = pending_task(ProjectFactory())
    arm_only = pending_task(ProjectFactory(builder_tags=["arch_aarch64"]))

    assert schedule_pending_tasks() == [untagged_project_task.pk]
    untagged_project_task.refresh_from_db()
    assert untagged_project_task.builder == x86
    # An x86_64 task of a project that asks for arch_aarch64 runs nowhere: no pool is both.
    reconcile_all()
    arm_only.refresh_from_db()
    assert arm_only.state == State.PENDING
    assert "no builder pool has every tag this project asks for" in arm_only.state_reason


def test_an_emulated_vm_pool_takes_its_arch_but_no_source_tasks():
    BuilderPool.objects.filter(pk=set_slots(0).pool_id).update(enabled=False)
    pool = BuilderPool.objects.create(
        name="arm-vms", kind=PoolKind.VM, arch="aarch64", config={"image": "/i"}
    )
    arm = machine_pool_sync(pool=pool)
    project = ProjectFactory()
    source = pending_task(project, source=True)
    aarch64 = pending_task(project, chroot_name="fedora-43-aarch64")

    assert schedule_pending_tasks() == [aarch64.pk]
    aarch64.refresh_from_db()
    assert aarch64.builder == arm
    source.refresh_from_db()
    assert source.state == State.PENDING  # for a native builder (the local pool here)


def test_a_batch_waits_until_the_batch_it_follows_has_finished():
    set_slots(2)
    project = ProjectFactory()
    first, then = pending_task(project), pending_task(project)
    first_batch, then_batch = Batch.objects.create(), Batch.objects.create()
    then_batch.blocked_by = first_batch
    then_batch.save()
    type(first.build).objects.filter(pk=first.build_id).update(batch=first_batch)
    type(then.build).objects.filter(pk=then.build_id).update(batch=then_batch)

    assert schedule_pending_tasks() == [first.pk]
    BuildTask.objects.filter(pk=first.pk).update(state=State.SUCCEEDED)
    type(first.build).objects.filter(pk=first.build_id).update(state=State.SUCCEEDED)
    assert schedule_pending_tasks() == [then.pk]
