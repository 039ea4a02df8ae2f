"""Run one claimed task on its builder (any pool kind): job spec in, results and state out."""

import logging
import shutil
import threading
import time
import uuid
from functools import partial
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from apps.builds import cancel_push, services
from apps.builds.announce import task_announce_start
from apps.builds.lifecycle import (
    build_refresh_state,
    send_scheduler_nudge,
    task_attempt_end,
    task_attempt_machine,
    task_attempt_start,
    task_builder_lost,
    task_end,
    task_transition,
    task_wait_again,
)
from apps.builds.logs import backend_log, task_result_dir
from apps.builds.models import FINAL_STATES, TASK_RELATED, Build, BuildTask, State
from apps.builds.scheduler import claim_next_task
from apps.builds.sources import job_source
from apps.builds.ssh_access import task_debug_access
from apps.builds.upload_links import upload_fetch, upload_release
from apps.builds.workspaces import workspace_name, workspaces_root
from apps.core.errors import ServiceError
from apps.core.gone import quiet_when_gone
from apps.core.queue import send_on_commit
from apps.core.tempfiles import worker_temp_dir
from apps.fleet import services as fleet_services
from apps.fleet.transports import transport_for
from apps.projects.build_config import chroot_build_config
from apps.projects.models import ProjectChroot
from builders.protocol import KIND_RPM, KIND_SRPM, JobResult, JobSpec
from builders.transports import BuilderLost, BuilderRefused, JobLeft

logger = logging.getLogger(__name__)
POLL_DATABASE_SECONDS = settings.TASK_POLL_SECONDS  # liveness report and fallback cancel poll
# A run_task message runs the next tasks of its slot while it is younger than this: its
# time limit (actors.RUN_TASK_LIMIT_MS) leaves an hour beyond the longest build.
HANDOFF_WINDOW_SECONDS = 1800


def task_run(*, task_id: int) -> None:
    """Run a task that the scheduler put in `starting`, then, on the slot it frees, the
    next tasks of its builder; a duplicate message does nothing."""
    started = time.monotonic()
    next_task_id: int | None = task_id
    while next_task_id is not None:
        freed_builder_id, gone = None, True
        with quiet_when_gone(
            f"task {next_task_id}", BuildTask.objects.filter(pk=next_task_id).exists
        ):
            freed_builder_id = task_run_one(task_id=next_task_id)
            gone = False
        if gone:
            break  # deleted with its build or project: its slot is free for the nudge below
        if freed_builder_id is None:
            return
        if time.monotonic() - started > HANDOFF_WINDOW_SECONDS:
            # Leave the slot to a fresh run_task message (the nudge below): this one's
            # time limit is for one build, not for an endless chain of them.
            break
        next_task_id = claim_next_task(freed_builder_id)
    # The scheduler hands on what this chain did not take: the slot itself, or a task of
    # another builder that waited for its owner's fair share.
    send_scheduler_nudge()


def task_run_one(*, task_id: int) -> int | None:
    """Run one task; returns the builder whose slot it held and freed, if there is one
    to hand on (not when the builder was lost or the task never ran)."""
    task = BuildTask.objects.select_related(*TASK_RELATED).filter(pk=task_id).first()
    lease = uuid.uuid4().hex
    # A task handed back by reconcile keeps its started_on, its attempt and its job.
    fields = {"started_on": timezone.now()} if task and not task.remote_job else {}
    if task is None or not task_transition(
        task_id,
        [State.STARTING],
        State.RUNNING,
        heartbeat_on=timezone.now(),
        lease_token=lease,
        **fields,
    ):
        return None
    task.lease_token = lease
    build_refresh_state(build_id=task.build_id)
    if task.started_on is None:
        # Copr announces a task's start once, not again on the builder of a next attempt.
        task_announce_start(task_id=task.pk)
    result_dir = task_result_dir(task)
    result_dir.mkdir(parents=True, exist_ok=True)
    if task.remote_job:
        backend_log(result_dir, f"task {task.task_id}: reattaching to job {task.remote_job}")
    else:
        backend_log(result_dir, f"task {task.task_id} attempt {task.attempt + 1} started")
        task_attempt_start(task=task)
    try:
        result = run_on_builder(task, result_dir)
    except JobLeft:
        close_old_connections()
        backend_log(result_dir, f"task {task.task_id}: its job was taken over by another worker")
        return None
    except BuilderLost as lost:
        close_old_connections()
        if not lease_held(task):
            return None
        task_attempt_end(task_id=task.pk, outcome=f"builder lost: {lost.reason}")
        task_lost(task, result_dir, lost)
        return None
    close_old_connections()
    if not lease_held(task):
        # Reconcile took this worker for dead and handed the job on: the other one ends it.
        return None
    # Collected and removed from the builder: nothing is left there to reattach to.
    BuildTask.objects.filter(pk=task.pk).update(remote_job="")
    task_attempt_end(task_id=task.pk, outcome=result.state)
    backend_log(result_dir, f"runner ended: {result.state} {result.failure_reason}".rstrip())
    builder_id = task.builder_id
    task.refresh_from_db()
    if task.is_source:
        services.source_task_finish(task=task, result=result, result_dir=result_dir)
        # Not when reconcile queued the task again meanwhile: its next attempt reads it.
        if BuildTask.objects.filter(pk=task.pk, state__in=FINAL_STATES).exists():
            upload_release(task.build_id, task.build.web_host)
    else:
        rpm_task_finish(task=task, result=result, result_dir=result_dir)
    return builder_id


def run_on_builder(task: BuildTask, result_dir: Path) -> JobResult:
    """Run the job with the transport of the task's builder; BuilderLost passes through.

    A source task's inputs from the web role (an upload, a webhook payload) are fetched
    into a directory of this task's own, removed when the runner is done with them.
    """
    inputs = worker_temp_dir("inputs") if task.is_source else None
    try:
        on_machine = partial(task_attempt_machine, task_id=task.pk)
        transport = transport_for(
            task.builder, task=task, on_machine=on_machine, debug=task_debug_access(task)
        )
        detached = getattr(transport, "detached_jobs", False)
        with TaskWatch(task, detached=detached) as watch:
            spec = job_spec(task, result_dir, inputs=inputs)
            if detached:
                result = transport.run(
                    spec,
                    should_cancel=watch.should_cancel,
                    attach=bool(task.remote_job),
                    on_job=partial(task_remote_job_record, task.pk),
                )
            else:
                result = transport.run(spec, should_cancel=watch.should_cancel)
    except ServiceError as error:  # the inputs could not be had: the web role says why
        backend_log(result_dir, f"source input unavailable: {error.message}")
        return JobResult(state=State.FAILED, failure_reason=error.message)
    except BuilderRefused as refused:
        # The host cannot be used as configured: no other attempt would fare better there.
        if task.builder_id is not None:
            fleet_services.builder_mark_down(builder_id=task.builder_id, reason=refused.reason)
        return JobResult(state=State.FAILED, failure_reason=refused.reason)
    except (BuilderLost, JobLeft):
        raise
    except Exception as error:  # a bug or a broken host must not leave the task running
        logger.exception("task %s crashed", task.task_id)
        return JobResult(state=State.FAILED, failure_reason=f"internal error: {error}")
    finally:
        if inputs is not None:
            shutil.rmtree(inputs, ignore_errors=True)
    if task.builder_id is not None:
        version = getattr(transport, "version", "")
        fleet_services.builder_seen(builder_id=task.builder_id, runner_version=version)
    return result


def task_remote_job_record(task_id: int, job_id: str) -> None:
    """The attempt's job is on its builder: a worker taking over the task reattaches to it."""
    BuildTask.objects.filter(pk=task_id).update(remote_job=job_id)


def lease_held(task: BuildTask) -> bool:
    """Whether this worker still follows the task (reconcile did not hand it on)."""
    return BuildTask.objects.filter(pk=task.pk, lease_token=task.lease_token).exists()


def task_lost(task: BuildTask, result_dir: Path, lost: BuilderLost) -> None:
    """The builder vanished mid-task: mark it down, and queue the task again once.

    A lost disposable machine leaves its pool up: the next task gets a machine of its own.
    A pool that could not make a machine is down, and the task waits for it, its attempts
    untouched: the build never ran.
    """
    reason = lost.reason
    # One transaction: nobody sees the builder down while its task still runs, nor the task
    # queued again while the scheduler could still hand it to that builder.
    with transaction.atomic():
        if task.builder_id is not None and not lost.pool_healthy:
            fleet_services.builder_mark_down(builder_id=task.builder_id, reason=reason)
        task.refresh_from_db()
        if lost.before_job:
            state = task_wait_again(task=task, reason=f"waiting: {reason}")
        else:
            state = task_builder_lost(task=task, reason=reason)
    backend_log(result_dir, f"builder lost ({reason}): task is now {state}")
    if state == State.FAILED and task.is_source:
        upload_release(task.build_id, task.build.web_host)


def rpm_task_finish(*, task: BuildTask, result: JobResult, result_dir: Path) -> None:
    BuildTask.objects.filter(pk=task.pk).update(buildroot=result.buildroot[:300])
    if result.state != State.SUCCEEDED:
        task_end(task=task, state=result.state, reason=result.failure_reason)
        return
    # The builder's part is done: free its slot now (task_run hands it its next task);
    # signing runs where the keys are.
    with transaction.atomic():
        # heartbeat_on: when it was built, which signing_wait counts from.
        BuildTask.objects.filter(pk=task.pk).update(
            built_packages=result.packages,
            result_files=result.files,
            builder=None,
            heartbeat_on=timezone.now(),
        )
        send_on_commit("publish_task", task.pk)


def job_spec(task: BuildTask, result_dir: Path, *, inputs: Path | None = None) -> JobSpec:
    """The job of a task; a source task's stored files are fetched into `inputs`."""
    build = task.build
    common = {
        "task_id": task.task_id,
        "build_id": build.pk,
        "owner": build.project.ownername,
        "project": build.project.name,
        "result_dir": str(result_dir),
        "workspaces_root": str(workspaces_root()),
        "workspace_name": workspace_name(task),
    }
    common["limits"] = job_limits(task)
    if task.is_source:
        return JobSpec(
            **common,
            kind=KIND_SRPM,
            source=source_for_job(build, inputs=inputs),
            enable_net=True,  # downloading the source needs the network; building does not
            timeout=settings.SOURCE_TASK_TIMEOUT,
            max_download_bytes=settings.MAX_SRPM_BYTES,
        )
    return JobSpec(
        **common,
        kind=KIND_RPM,
        source={"srpm_path": str(Path(settings.RESULTS_ROOT) / build.srpm_url)},
        chroot=task.chroot.name,
        arch=task.chroot.arch,
        macros=dict(task.chroot.macros),
        enable_net=build.enable_net,
        timeout=build.timeout,
        mock_config=task.chroot.mock_config or None,
        build_config=task_build_config(task),
        # Copr's --no-cleanup-after: the user debugs in the build's own workspace.
        keep_workspace="kept for SSH access" if build.with_ssh_access else "",
    )


def task_build_config(task: BuildTask) -> dict:
    """The project chroot's settings for mock, with the build's isolation and bootstrap."""
    build = task.build
    project_chroot = build.project.project_chroots.filter(chroot=task.chroot).first()
    # A chroot dropped from the project since still builds with the project's settings.
    project_chroot = project_chroot or ProjectChroot(chroot=task.chroot)
    project_chroot.project = build.project
    return chroot_build_config(
        project_chroot,
        dirname=build.project_dirname,
        isolation=build.isolation,
        bootstrap=build.bootstrap,
    )


def default_job_limits() -> dict[str, int]:
    """The BUILD_LIMIT_* settings, as job spec limits."""
    return {
        "processes": settings.BUILD_LIMIT_PROCESSES,
        "memory_mib": settings.BUILD_LIMIT_MEMORY_MIB,
        "cpu_seconds": settings.BUILD_LIMIT_CPU_SECONDS,
        "disk_mib": settings.BUILD_LIMIT_DISK_MIB,
        "cpu_percent": settings.BUILD_LIMIT_CPU_PERCENT,
    }


def job_limits(task: BuildTask) -> dict[str, int]:
    """The task's resource limits: its builder pool's, else the BUILD_LIMIT_* settings."""
    pool = task.builder.pool if task.builder_id else None
    limits = {}
    for name, default in default_job_limits().items():
        override = getattr(pool, f"limit_{name}", None) if pool is not None else None
        limits[name] = default if override is None else override
    return limits


def source_for_job(build: Build, *, inputs: Path | None = None) -> dict:
    if inputs is None:
        return job_source(build)
    return job_source(build, upload_file=partial(upload_fetch, build, into=inputs))


class TaskWatch:
    """A thread that reports the task alive and watches for cancel while the runner works.

    The runner polls `should_cancel` often; answering from memory keeps database lock
    waits out of the build's critical path. A cancel arrives pushed (`cancel_push`), or
    at the latest with the next database poll.
    """

    def __init__(self, task: BuildTask, *, detached: bool = False) -> None:
        self.task = task
        # A detached job is left to the worker that took the task over (should_cancel
        # raises JobLeft); any other runs on here, as it would have before.
        self.detached = detached
        self.canceled = threading.Event()
        self.left = threading.Event()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._watch, name=f"watch-{task.pk}", daemon=True)

    def __enter__(self) -> "TaskWatch":
        # A cancel is pushed to `canceled` at once; the poll below is the fallback.
        cancel_push.watch_register(self.task.build_id, self.canceled)
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        cancel_push.watch_unregister(self.task.build_id, self.canceled)
        self.stopped.set()
        self.thread.join()

    def should_cancel(self) -> bool:
        if self.canceled.is_set():
            return True
        if self.detached and self.left.is_set():
            raise JobLeft(f"task {self.task.task_id} is followed by another worker")
        return False

    def _watch(self) -> None:
        try:
            while not self.stopped.wait(POLL_DATABASE_SECONDS):
                mine = BuildTask.objects.filter(pk=self.task.pk, lease_token=self.task.lease_token)
                if not mine.update(heartbeat_on=timezone.now()):
                    self.left.set()  # the lease went to another worker: leave the job to it
                fleet_services.builder_seen(builder_id=self.task.builder_id)
                # A deleted build (with its project) stops like a canceled one.
                if not Build.objects.filter(pk=self.task.build_id, canceled=False).exists():
                    self.canceled.set()
        finally:
            close_old_connections()
