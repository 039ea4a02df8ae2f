"""The task lifecycle: compare-and-set transitions, the end of a task, the derived build state.

The bottom of the build flow (request -> service -> actor -> builder -> repo): services,
the execution of a task and the repositories' publishing all move tasks through here, and
this module calls none of them back. It imports nothing of apps.repos, so the repos app
reports a task signed, published or failed with plain top-level imports of this module.
tests/builds/test_lifecycle.py holds that rule.
"""

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.builds.announce import task_announce_end
from apps.builds.logs import task_logs_finish
from apps.builds.models import (
    ACTIVE_STATES,
    FINAL_STATES,
    Build,
    BuildTask,
    State,
    TaskAttempt,
)
from apps.builds.states import derive_build_state
from apps.core.queue import send_on_commit


def task_transition(task_id: int, from_states, to_state: str, **fields) -> bool:
    """Compare-and-set a task's state; True only for the caller that made the change.

    In a transaction, the task's build is locked first, as build_cancel and project_delete
    lock it: with one order (build, then task) a worker ending a task while its build is
    canceled or deleted waits instead of deadlocking with it.
    """
    if connection.in_atomic_block:
        owning_build = BuildTask.objects.filter(pk=task_id).values("build_id")
        list(Build.objects.select_for_update().filter(pk__in=owning_build).values_list("pk"))
    changed = BuildTask.objects.filter(pk=task_id, state__in=list(from_states)).update(
        state=to_state, **fields
    )
    return changed == 1


def task_attempt_start(*, task: BuildTask) -> None:
    """A run of the task on its builder begins: the record that outlives task.builder."""
    builder = task.builder
    TaskAttempt.objects.create(
        task=task,
        number=task.attempt + 1,
        builder=builder,
        builder_name=builder.name if builder is not None else "",
    )


def task_attempt_machine(name: str, waited: float, *, task_id: int) -> None:
    """The running attempt got its machine (vm and command pools) after `waited` seconds."""
    TaskAttempt.objects.filter(task_id=task_id, ended_on__isnull=True).update(
        machine_name=name[:100], machine_wait_seconds=round(waited, 3)
    )


def task_attempt_end(*, task_id: int, outcome: str) -> None:
    """The task's run on its builder is over (built, failed, canceled or the builder lost)."""
    TaskAttempt.objects.filter(task_id=task_id, ended_on__isnull=True).update(
        ended_on=timezone.now(), outcome=outcome[:500]
    )


def task_end(*, task: BuildTask, state: str, reason: str = "") -> bool:
    """Move a task that has not finished yet to a final state."""
    task_logs_finish(task)
    with transaction.atomic():
        ended = task_transition(
            task.pk,
            [s for s in State.values if s not in FINAL_STATES],
            state,
            state_reason=reason,
            ended_on=timezone.now(),
        )
        if ended:
            task_announce_end(task_id=task.pk, state=state)
            state, batch_id = build_refresh_state(build_id=task.build_id)
            # The scheduler has something new only when a slot frees or a build that
            # other batches may wait for ends.
            if task.builder_id is not None or (batch_id and state in FINAL_STATES):
                send_scheduler_nudge()
    return ended


def task_builder_lost(*, task: BuildTask, reason: str) -> str:
    """The task's builder stopped answering: queue the task again once, then fail it.

    Returns the task's new state. Not the build's fault, so the user sees "builder lost".
    """
    if task.attempt + 1 < settings.MAX_TASK_ATTEMPTS:
        with transaction.atomic():
            requeued = task_transition(
                task.pk,
                ACTIVE_STATES,
                State.PENDING,
                attempt=task.attempt + 1,
                builder=None,
                remote_job="",
                state_reason=f"builder lost ({reason}); queued again"[:500],
            )
            if requeued:
                build_refresh_state(build_id=task.build_id)
                send_scheduler_nudge()
                return State.PENDING
    reason = f"builder lost: {reason}; {task.attempt + 1} attempt(s) made"
    task_end(task=task, state=State.FAILED, reason=reason[:500])
    return State.FAILED


def task_wait_again(*, task: BuildTask, reason: str) -> str:
    """Back to the queue with the same attempt: its builder never got to run it."""
    with transaction.atomic():
        if task_transition(
            task.pk,
            ACTIVE_STATES,
            State.PENDING,
            builder=None,
            remote_job="",
            state_reason=reason[:500],
        ):
            build_refresh_state(build_id=task.build_id)
            send_scheduler_nudge()
    task.refresh_from_db(fields=["state"])
    return task.state


def build_refresh_state(*, build_id: int) -> tuple[str, int | None]:
    """Store the build's state and times derived from its tasks; returns state and batch."""
    with transaction.atomic():
        # Tasks of one build end in parallel (one createrepo run per chroot): without the
        # lock, each could read the other still running and store a state that never ends.
        build = Build.objects.select_for_update().get(pk=build_id)
        return _build_store_derived_state(build)


def _build_store_derived_state(build: Build) -> tuple[str, int | None]:
    build_id = build.pk
    tasks = list(BuildTask.objects.filter(build_id=build_id))
    source = next((t for t in tasks if t.is_source), None)
    chroot_tasks = [t for t in tasks if not t.is_source]
    state = derive_build_state(
        canceled=build.canceled,
        source_state=source.state if source else None,
        chroot_states=[t.state for t in chroot_tasks],
    )
    started = [t.started_on for t in tasks if t.started_on]
    all_ended = all(t.state in FINAL_STATES for t in tasks)
    ended = [t.ended_on for t in tasks if t.ended_on]
    Build.objects.filter(pk=build_id).update(
        state=state,
        started_on=min(started) if started else None,
        ended_on=max(ended) if all_ended and ended else None,
        built_packages=[
            {"name": p["name"], "version": p["version"]}
            for t in chroot_tasks
            if t.state == State.SUCCEEDED
            for p in t.built_packages
            if p.get("arch") != "src"
        ],
    )
    return state, build.batch_id


def send_scheduler_nudge() -> None:
    """Ask the scheduler, after the commit, to hand pending tasks to free slots."""
    # The actors module sits above this one (its actors run execution and services, which
    # import this module): it is imported when a nudge is sent, not when this one loads.

    send_on_commit("schedule_tasks")
