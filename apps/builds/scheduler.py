"""Hand pending tasks to free builder slots: tasks overdue by SCHEDULER_AGING_SECONDS in queued
order, then source tasks, normal, background builds; fair share between owners in each group."""

import logging
from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Min, Q
from django.utils import timezone

from apps.builds.models import FINAL_STATES, Batch, Build, BuildTask, Priority, State
from apps.core.queue import send_on_commit
from apps.fleet.models import MACHINE_POOL_KINDS, RUNNABLE_POOL_KINDS, Builder, BuilderState
from apps.fleet.services import local_pool_ensure, pool_is_emulated
from apps.projects.models import Project

logger = logging.getLogger(__name__)


def schedule_pending_tasks() -> list[int]:
    """Assign as many pending tasks as there are free slots; returns the assigned task ids."""
    local_pool_ensure()
    if not has_work_and_room():
        # Most nudges arrive while every slot is busy; answer them without the write lock.
        return []
    assigned: list[int] = []
    with transaction.atomic():
        # Locking the builder rows serializes schedulers, so no slot is handed out twice.
        builders = list(
            ready_builders().select_related("pool").select_for_update(of=("self",)).order_by("pk")
        )
        active, per_owner = slot_usage()
        room_left = False
        for builder in builders:
            while active[builder.pk] < builder.slots:
                task_id = next_task_for(builder, per_owner)
                if task_id is None:
                    room_left = True
                    break
                active[builder.pk] += 1
                assigned.append(task_id)
        if room_left:
            # Tasks still pending beside a free slot: say why when no builder serves them.
            note_unserved_arches(builders)
        for task_id in assigned:
            send_on_commit("run_task", task_id)
    if assigned:
        logger.info("scheduled tasks %s", assigned)
    return assigned


def claim_next_task(builder_id: int) -> int | None:
    """Claim the next task for the slot of `builder_id` that a task just freed, or None.

    The worker that ran the freed slot's task runs the claimed one itself (see
    execution.task_run): between two builds on a slot there is then no scheduler message,
    no run_task message and no wait for a free worker thread, which cost about half a second
    per build in a burst. Same rules as schedule_pending_tasks: priorities, fair share,
    slot count, the builder row locked.
    """
    with transaction.atomic():
        builder = (
            ready_builders()
            .select_related("pool")
            .select_for_update(of=("self",))
            .filter(pk=builder_id)
            .first()
        )
        if builder is None:
            return None  # drained, down or removed meanwhile: its slots take nothing
        active, per_owner = slot_usage()
        task_id = next_task_for(builder, per_owner) if active[builder.pk] < builder.slots else None
    if task_id is not None:
        logger.info("handed builder %s its next task %s", builder_id, task_id)
    return task_id


def slot_usage() -> tuple[Counter, Counter]:
    """Tasks holding a slot, counted per builder and per owner."""
    running = BuildTask.objects.before_publishing().values_list("builder_id", "owner_key")
    active, per_owner = Counter(), Counter()
    for builder_id, owner_key in running:
        active[builder_id] += 1
        per_owner[owner_key] += 1
    return active, per_owner


def has_work_and_room() -> bool:
    slots = sum(ready_builders().values_list("slots", flat=True))
    busy = BuildTask.objects.on_builder().count()
    return busy < slots and BuildTask.objects.filter(state=State.PENDING).exists()


def next_task_for(builder: Builder, per_owner: Counter) -> int | None:
    """Claim the best task this builder can run, or None when there is none.

    Priority alone starves: a steady stream of uploads (source tasks) would hold back RPM
    builds queued before them for as long as it lasts. So a task that has waited longer than
    SCHEDULER_AGING_SECONDS goes first, overdue tasks in queued order; priority orders only
    the tasks younger than that bound. Fair share between owners holds in both groups.
    """
    queue = runnable_tasks(
        builder.arches,
        pool_tags(builder),
        own_machines=builder.pool.kind in MACHINE_POOL_KINDS,
        sources=not pool_is_emulated(builder.pool),
    )
    cutoff = timezone.now() - timedelta(seconds=settings.SCHEDULER_AGING_SECONDS)
    groups = [queue.filter(queued_on__lte=cutoff)] if any_task_overdue(cutoff) else []
    groups += [queue.filter(priority=priority) for priority in Priority.values]
    for group in groups:
        # Ids follow queue times (both are set when a task is made): the smallest id of an
        # owner is the task of theirs that has waited longest.
        heads = {
            row["owner_key"]: row["first"]
            for row in group.values("owner_key").annotate(first=Min("id")).order_by()
        }
        # Fair share: the owner with the fewest running tasks goes first, then the oldest.
        for owner in sorted(heads, key=lambda owner: (per_owner[owner], heads[owner])):
            if claim(heads[owner], builder):
                per_owner[owner] += 1
                return heads[owner]
    return None


def any_task_overdue(cutoff: datetime) -> bool:
    """Whether a pending task was queued before `cutoff`: the oldest task of each priority
    is one step down the task_queue index, so the usual answer, no, costs next to nothing."""
    for priority in Priority.values:
        oldest = (
            BuildTask.objects.filter(state=State.PENDING, priority=priority)
            .order_by("id")
            .values_list("queued_on", flat=True)
            .first()
        )
        if oldest is not None and oldest <= cutoff:
            return True
    return False


def pool_tags(builder: Builder) -> list[str]:
    """What a builder offers the tasks that select on tags: its pool's tags and an
    "arch_<arch>" for each arch it builds."""
    return [*builder.pool.tags, *(f"arch_{arch}" for arch in builder.arches)]


def runnable_tasks(
    arches: list[str], tags: list[str], *, own_machines: bool = True, sources: bool = True
):
    """Pending tasks a builder of `arches` and `tags` may run: RPM tasks of its arches whose
    project asks for no tag it lacks (Project.builder_tags, set by an operator); source
    tasks anywhere but on emulated machines (`sources`: they have no arch, and would run
    there many times slower, without the download tools that image leaves out). RPM tasks
    of builds with SSH access only where each task gets a machine of its own
    (`own_machines`: vm and command pools), which is kept for the user.

    The exceptions are subqueries of the few builds they concern, not joins: the pending
    tasks are read without a join to their builds, which cost a claim 55 ms with 5,000
    tasks pending (bench/scale.py).
    """
    rpm_tasks = Q(chroot__arch__in=arches)
    if asking := projects_asking_beyond(tags):
        # A pending task's build is never finished (its state is refreshed with the task's).
        rpm_tasks &= ~Q(build_id__in=build_ids(project_id__in=asking, state__in=UNFINISHED))
    if not own_machines:
        # The partial index build_ssh_access holds these few.
        rpm_tasks &= ~Q(build_id__in=build_ids().exclude(ssh_public_keys=""))
    queue = BuildTask.objects.filter(
        (Q(chroot__isnull=True) | rpm_tasks) if sources else rpm_tasks,
        state=State.PENDING,
    )
    if blocked := blocked_batches():
        queue = queue.exclude(build_id__in=build_ids(batch_id__in=blocked))
    return queue


UNFINISHED = [state for state in State.values if state not in FINAL_STATES]


def build_ids(**lookups):
    return Build.objects.filter(**lookups).order_by().values("pk")


def blocked_batches() -> list[int]:
    """Batches that wait for another batch's builds to finish."""
    blocked = Batch.objects.filter(
        blocked_by__isnull=False, blocked_by__builds__state__in=UNFINISHED
    )
    return list(blocked.order_by().values_list("pk", flat=True).distinct())


def projects_asking_beyond(tags: list[str]) -> list[int]:
    """Projects whose builder_tags are not all among `tags`. Compared here, not in SQL:
    JSON containment has no SQLite lookup, and only the few projects an operator tagged
    are read."""
    offered = set(tags)
    tagged = Project.objects.exclude(builder_tags=[]).order_by().values_list("pk", "builder_tags")
    return [pk for pk, asked in tagged if not set(asked) <= offered]


def claim(task_id: int, builder: Builder) -> bool:
    return (
        BuildTask.objects.filter(pk=task_id, state=State.PENDING).update(
            state=State.STARTING,
            builder=builder,
            heartbeat_on=timezone.now(),
            state_reason="",
        )
        == 1
    )


def explain_waiting_tasks() -> None:
    """note_unserved_arches for the reconcile tick, which runs even when no slot is free."""
    note_unserved_arches(list(ready_builders().select_related("pool")))


def ready_builders():
    """Builders that take tasks, of every enabled pool of a kind that can run them."""
    return Builder.objects.filter(
        state=BuilderState.READY, pool__enabled=True, pool__kind__in=RUNNABLE_POOL_KINDS
    )


def note_unserved_arches(builders: list[Builder]) -> None:
    """Tell waiting tasks why they wait when no builder serves their arch."""
    served = {arch for builder in builders for arch in builder.arches}
    BuildTask.objects.filter(state=State.PENDING, chroot__isnull=False).exclude(
        chroot__arch__in=served
    ).filter(state_reason="").update(
        state_reason="waiting: no builder pool serves this architecture"
    )
    note_unserved_tags(builders)


def note_unserved_tags(builders: list[Builder]) -> None:
    """Tell waiting tasks why they wait when no builder of their arch has every tag their
    project asks for (Project.builder_tags)."""
    servable = Q(pk__in=[])
    for builder in builders:
        servable |= Q(chroot__arch__in=builder.arches) & ~Q(
            build__project_id__in=projects_asking_beyond(pool_tags(builder))
        )
    BuildTask.objects.filter(state=State.PENDING, chroot__isnull=False, state_reason="").exclude(
        build__project__builder_tags=[]
    ).exclude(servable).update(
        state_reason="waiting: no builder pool has every tag this project asks for "
        "(its builder_tags)"
    )
