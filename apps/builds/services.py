"""Every write to builds and their tasks: submit, source results, cancel, delete, recovery."""

import fnmatch
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from apps.builds import cancel_push, sources
from apps.builds.announce import task_announce_end
from apps.builds.lifecycle import (
    build_refresh_state,
    send_scheduler_nudge,
    task_attempt_end,
    task_end,
    task_transition,
)
from apps.builds.logs import backend_log, task_logs_finish
from apps.builds.models import (
    ACTIVE_STATES,
    FINAL_STATES,
    SOURCE_DIR,
    TASK_RELATED,
    Batch,
    Build,
    BuildTask,
    Priority,
    State,
)
from apps.builds.ssh_access import (
    ssh_chroots_checked,
    ssh_hours_checked,
    ssh_keys_checked,
    ssh_machine_release_with,
    ssh_machines_cap_check,
)
from apps.core.errors import Conflict, FieldErrors, InvalidForm, PermissionDenied, ServiceError
from apps.core.names import dirname_errors, package_name_errors
from apps.core.queue import send_on_commit
from apps.fleet.machines import machines_reconcile, machines_to_make_ahead
from apps.fleet.selectors import chroots_checked_for_builders, served_arches, unserved_message
from apps.packages.models import Package
from apps.packages.sources import PACKAGE_SOURCE_TYPES, UNSET, check_source, source_field
from apps.projects.models import Chroot, Project
from apps.projects.permissions import can_build_in, can_edit
from builders.protocol import JobResult
from builders.srpm import NotAnSrpm, read_srpm_header

logger = logging.getLogger(__name__)
CANCELED_BY_USER = "canceled by the user"


@dataclass(frozen=True)
class BuildOptions:
    """Copr's common build options."""

    chroots: list[str] | None = None  # names or fnmatch patterns; None: all active chroots
    exclude_chroots: list[str] = field(default_factory=list)
    enable_net: bool | None = None  # None: the project's setting
    timeout: int | None = None
    background: bool = False
    project_dirname: str | None = None
    after_build_id: int | None = None  # run after that build's batch has finished
    with_build_id: int | None = None  # run in the same batch as that build
    # Copr's per-build mock settings; `unchanged` takes the chroot's, then the project's.
    isolation: str = "unchanged"  # or default, nspawn, simple
    bootstrap: str = "unchanged"  # or default, off, on, image
    # SSH access for debugging (only through a resubmit, as in Copr; ssh_access.py): the
    # user's public keys, one per line, and the hours the machine stays after the build.
    ssh_public_keys: str = ""
    ssh_hours: int | None = None


# --- submit -------------------------------------------------------------------------------


def build_submit(
    *,
    user,
    project: Project,
    source_type: str,
    source_json: dict,
    upload: UploadedFile | None = None,
    options: BuildOptions = BuildOptions(),  # noqa: B008 (frozen, never mutated)
    errors: FieldErrors | None = None,
    filed_srpm: str = "",
) -> Build:
    """Check and record a build, store its upload, and queue its source task.

    `filed_srpm` (build_resubmit's, never a client's) is where an earlier upload build of
    the project filed its source RPM in the results: the backend takes it from there.

    Everything a person can get wrong is checked before any row is written, so a bad
    request creates nothing; every bad field is reported at once, with the caller's
    `errors` (found while reading the request), in Copr's per-field shape.
    """
    if not can_build_in(user, project):
        raise PermissionDenied(
            f"User '{user.username if user.is_authenticated else 'anonymous'}' is not allowed "
            f"to build in the project {project.full_name}."
        )
    errors = errors if errors is not None else FieldErrors()
    chroots, timeout, dirname = submission_checked(user, project, options, errors)
    ssh_keys, ssh_hours = ssh_access_checked(options, chroots, errors)
    if upload is not None:
        errors.check("pkgs", sources.check_uploaded_srpm, upload)
    elif filed_srpm:
        source_json = {"pkg": PurePosixPath(filed_srpm).name, "filed_srpm": filed_srpm}
    else:
        errors.check(source_field(source_type), check_source, source_type, source_json)
    errors.raise_if_any()

    stored_upload_of = None
    committed = []
    try:
        with transaction.atomic():
            # First of the commit hooks: what fails after it must not touch the upload.
            transaction.on_commit(lambda: committed.append(True))
            if upload is not None:
                upload_budget_check(user, upload.size)
            if ssh_keys:
                ssh_machines_cap_check(user)
            build = Build.objects.create(
                batch=batch_for(user, options),
                project=project,
                project_dirname=dirname,
                submitter=user,
                source_type=source_type,
                source_json=source_json,
                enable_net=project.enable_net if options.enable_net is None else options.enable_net,
                repos=list(project.additional_repos),
                timeout=timeout,
                is_background=options.background,
                isolation=options.isolation,
                bootstrap=options.bootstrap,
                requested_chroots=[chroot.name for chroot in chroots],
                state=State.PENDING,
                ssh_public_keys=ssh_keys,
                ssh_hours=ssh_hours,
            )
            if upload is not None:
                stored_upload_of = build.pk
                build.source_json = sources.store_upload(build.pk, upload)
                build.save(update_fields=["source_json"])
            source_task_create(build, needs_builder=upload is None and not filed_srpm)
    except BaseException:
        # The rows are rolled back; the stored upload must not outlive them. Once they are
        # committed the upload is the build's source and stays, whatever fails afterwards.
        if stored_upload_of is not None and not committed:
            sources.discard_upload(stored_upload_of)
        raise
    logger.info("build %s submitted to %s by %s", build.pk, project.full_name, user)
    if upload is not None:
        uploads_reconcile_now_and_then()
    return build


def build_resubmit(
    *,
    user,
    build: Build,
    options: BuildOptions = BuildOptions(),  # noqa: B008 (frozen, never mutated)
    errors: FieldErrors | None = None,
) -> Build:
    """Submit an earlier build's source again, with its own chroots and options (Copr's
    resubmit); the new build keeps the old one's package. An upload build is resubmitted
    with the source RPM its source task filed in the results, as Copr does: the backend,
    which keeps the results, takes it from there (the web may run on another host)."""
    if not can_build_in(user, build.project):
        raise PermissionDenied(f"You are not allowed to resubmit build {build.pk}.")
    if not resubmittable(build):
        raise Conflict(
            f"Build {build.pk} was built from an uploaded file that never reached the "
            "results: submit the file again as a new build."
        )
    with transaction.atomic():
        resubmitted = build_submit(
            user=user,
            project=build.project,
            source_type=build.source_type,
            source_json=dict(build.source_json),
            options=options,
            errors=errors,
            filed_srpm=build.srpm_url if build.source_type == "upload" else "",
        )
        if build.package_id:
            Build.objects.filter(pk=resubmitted.pk).update(
                package_id=build.package_id, package_name=build.package_name
            )
    resubmitted.refresh_from_db()
    return resubmitted


def resubmittable(build: Build) -> bool:
    # A custom script's webhook payload is removed once the source task has used it; an
    # upload is removed too, but the source RPM its source task filed stays in the results.
    if build.source_json.get("hook_data"):
        return False
    return build.source_type != "upload" or bool(build.srpm_url)


def upload_budget_check(user, size: int) -> None:
    """Refuse an upload that would take the user's waiting uploads past their budget.

    Uploads wait on disk until their source task has filed them; without a budget one
    user could fill UPLOADS_ROOT with builds that never get that far. The user's row is
    locked until the commit, so two uploads of one user cannot both take the last room.
    """
    budget = settings.UPLOADS_USER_BUDGET_BYTES
    if not budget:
        return
    list(get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk"))
    waiting_builds = (
        BuildTask.objects.filter(
            build__submitter=user, build__source_type="upload", chroot__isnull=True
        )
        .exclude(state__in=list(FINAL_STATES))
        .values_list("build_id", flat=True)
    )
    waiting = sum(sources.upload_bytes(build_id) for build_id in waiting_builds)
    if waiting + size > budget:
        raise sources.UploadBudgetExceeded(
            f"Your uploads that wait for their source task already take "
            f"{sources.size_text(waiting)} of your {sources.size_text(budget)} budget; this one "
            f"({sources.size_text(size)}) does not fit. Wait until those builds have started, or "
            f"cancel the ones you no longer need, then submit it again."
        )


def submission_checked(user, project: Project, options: BuildOptions, errors: FieldErrors):
    """The chroots, timeout and dirname of a submission; problems are recorded in `errors`."""
    chroots = errors.check(
        "chroots", select_chroots, project, options.chroots, options.exclude_chroots
    )
    if chroots is not None:
        chroots = errors.check("chroots", chroots_checked_for_builders, chroots)
    timeout = errors.check("timeout", checked_timeout, options.timeout)
    dirname = errors.check("project_dirname", checked_dirname, project, options.project_dirname)
    batch_field = "with_build_id" if options.with_build_id else "after_build_id"
    errors.check(batch_field, check_batch_options, user, options)
    return chroots, timeout, dirname


def ssh_access_checked(options: BuildOptions, chroots, errors: FieldErrors) -> tuple[str, int]:
    """The normalized keys and hours of a build with SSH access ("", 0 without it)."""
    if not options.ssh_public_keys.strip():
        return "", 0
    keys = errors.check("ssh_public_keys", ssh_keys_checked, options.ssh_public_keys)
    hours = errors.check("ssh_hours", ssh_hours_checked, options.ssh_hours)
    if chroots is not None:
        errors.check("chroots", ssh_chroots_checked, chroots)
    return keys or "", hours or 0


def source_task_create(build: Build, *, needs_builder: bool) -> BuildTask:
    """Queue the build's source task.

    An upload needs no builder: the SRPM is already here and its header was read at
    submit, so the task only files it. It runs at once instead of taking a builder slot
    from real builds, unless its batch has to wait for another one first.
    """
    waits_for_batch = build.batch is not None and build.batch.blocked_by_id is not None
    direct = not needs_builder and not waits_for_batch
    task = BuildTask.objects.create(
        build=build,
        chroot=None,
        state=State.STARTING if direct else State.PENDING,
        heartbeat_on=timezone.now() if direct else None,
        priority=Priority.SOURCE,
        owner_key=build.project.ownername,
        result_dir=f"{SOURCE_DIR}/{build.pk:08d}",
    )
    if direct:
        send_on_commit("run_task", task.pk)
    else:
        send_scheduler_nudge()
    return task


def select_chroots(project: Project, patterns: list[str] | None, excludes: list[str]):
    """The project's active chroots chosen by name or fnmatch pattern, minus exclusions."""
    enabled = list(
        Chroot.objects.filter(project_chroots__project=project, is_active=True).order_by("name")
    )
    if patterns:
        chosen = []
        for pattern in patterns:
            matches = [c for c in enabled if fnmatch.fnmatch(c.name, pattern)]
            if not matches:
                raise ServiceError(unknown_chroot_message(project, pattern, enabled))
            chosen += [c for c in matches if c not in chosen]
    else:
        chosen = enabled
    chosen = [c for c in chosen if not any(fnmatch.fnmatch(c.name, x) for x in excludes)]
    if not chosen:
        raise ServiceError(
            f"No chroot to build in: the project {project.full_name} has no active chroot "
            "matching the request. Enable a chroot in the project settings first."
        )
    return chosen


def unknown_chroot_message(project: Project, pattern: str, enabled: list[Chroot]) -> str:
    """Copr's message for a chroot outside the form's choices, saying which ones are."""
    available = ", ".join(c.name for c in enabled) or "none"
    return (
        f"'{pattern}' is not a valid choice for this field "
        f"(chroots enabled in {project.full_name}: {available})"
    )


def checked_timeout(timeout: int | None) -> int:
    if timeout is None:
        return settings.DEFAULT_BUILD_TIMEOUT
    if not 0 < timeout <= settings.MAX_BUILD_TIMEOUT:
        raise ServiceError(
            f"timeout must be between 1 and {settings.MAX_BUILD_TIMEOUT} seconds, not {timeout}."
        )
    return timeout


def checked_dirname(project: Project, dirname: str | None) -> str:
    """Copr's project_dirname: `<project>` or `<project>:custom:<x>` / `<project>:pr:<n>`."""
    if not dirname:
        return project.name
    problems = dirname_errors(project.name, dirname)
    if problems:
        raise InvalidForm({"project_dirname": problems})
    return dirname


# --- results of the source task -----------------------------------------------------------


def source_task_finish(*, task: BuildTask, result: JobResult, result_dir: Path) -> None:
    """Record the SRPM and create one RPM task per chosen chroot, or fail the build."""
    if result.state != State.SUCCEEDED:
        task_end(task=task, state=result.state, reason=result.failure_reason)
        return
    srpm_path = result_dir / result.srpm["filename"]
    try:
        # Read the header ourselves: the builder's word is not trusted.
        header = read_srpm_header(srpm_path)
    except NotAnSrpm as error:
        task_end(task=task, state=State.FAILED, reason=f"not a source RPM: {error}")
        return
    # The name becomes a Package row and part of result directories: Copr's rules apply.
    problems = package_name_errors(header["name"])
    if problems:
        reason = f"the source RPM's package name is not valid: {' '.join(problems)}"
        # Copr's wording ("Too long package name") in backend.log, where scripts grep for it.
        backend_log(result_dir, reason)
        task_end(task=task, state=State.FAILED, reason=reason)
        return
    build = task.build
    task_logs_finish(task)
    with transaction.atomic():
        if not task_transition(task.pk, [State.RUNNING], State.SUCCEEDED, ended_on=timezone.now()):
            return
        package = package_for_build(build, header["name"])
        Build.objects.filter(pk=build.pk).update(
            package=package,
            source_commit=reported_commit(result.srpm),
            package_name=header["name"],
            package_version=evr_text(header),
            srpm_url=f"{build.project.ownername}/{build.project_dirname}/"
            f"{task.result_dir}/{srpm_path.name}",
        )
        task_announce_end(task_id=task.pk, state=State.SUCCEEDED)
        chroot_tasks_create(build=build, header=header)
        build_refresh_state(build_id=build.pk)
        send_scheduler_nudge()


def package_for_build(build: Build, name: str) -> Package:
    """The package a build made; a new one, or one without a source yet, keeps the build's
    source as its default (Copr's PackagesLogic.get_or_create), so its Rebuild works."""
    package, _ = Package.objects.get_or_create(project=build.project, name=name)
    if package.source_type in ("", UNSET) and build.source_type in PACKAGE_SOURCE_TYPES:
        # A custom webhook's payload belongs to that one build.
        source_json = {k: v for k, v in build.source_json.items() if k != "hook_data"}
        Package.objects.filter(pk=package.pk, source_type=package.source_type).update(
            source_type=build.source_type, source_json=source_json
        )
    return package


def reported_commit(srpm: dict) -> str:
    """The commit the source task checked out (SCM and DistGit), when it reported a hash."""
    commit = str(srpm.get("commit") or "")
    return commit if COMMIT_HASH.fullmatch(commit) else ""


COMMIT_HASH = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def evr_text(header: dict) -> str:
    epoch = f"{header['epoch']}:" if header.get("epoch") else ""
    return f"{epoch}{header['version']}-{header['release']}"


def chroot_tasks_create(*, build: Build, header: dict) -> None:
    """One task per requested chroot: pending, or ended at once with the reason when the
    SRPM excludes its arch (skipped) or no builder serves that arch (failed)."""
    chroots = Chroot.objects.filter(name__in=build.requested_chroots)
    priority = Priority.BACKGROUND if build.is_background else Priority.NORMAL
    served = served_arches()
    for chroot in chroots:
        state, reason = State.PENDING, ""
        if reason := arch_exclusion_reason(chroot.arch, header):
            state = State.SKIPPED
        elif chroot.arch not in served:
            state, reason = State.FAILED, unserved_message([chroot], served)
        BuildTask.objects.create(
            build=build,
            chroot=chroot,
            state=state,
            state_reason=reason,
            priority=priority,
            owner_key=build.project.ownername,
            result_dir=f"{chroot.name}/{build.pk:08d}-{header['name']}",
            ended_on=timezone.now() if reason else None,
        )


def arch_exclusion_reason(arch: str, header: dict) -> str:
    exclusive = header.get("exclusivearch") or []
    excluded = header.get("excludearch") or []
    if exclusive and arch not in exclusive and "noarch" not in exclusive:
        return f"skipped because of ExclusiveArch: {' '.join(exclusive)}"
    if arch in excluded:
        return f"skipped because of ExcludeArch: {' '.join(excluded)}"
    return ""


# --- cancel and delete --------------------------------------------------------------------


def build_cancel(*, user, build: Build) -> Build:
    """Cancel a build: queued tasks end now; running ones are stopped by their worker."""
    if not can_build_in(user, build.project):
        raise PermissionDenied(f"You are not allowed to cancel build {build.pk}.")
    with transaction.atomic():
        build = Build.objects.select_for_update().get(pk=build.pk)
        if build.state in FINAL_STATES:
            raise Conflict(f"Cannot cancel build {build.pk}: it has already {build.state}.")
        Build.objects.filter(pk=build.pk).update(canceled=True)
        queued = BuildTask.objects.filter(
            build=build, state__in=[State.WAITING, State.PENDING, State.STARTING]
        )
        canceled = {"state": State.CANCELED, "state_reason": CANCELED_BY_USER}
        # The source task first, on its own: when this update ends it, no worker ever runs
        # it (their start is a compare-and-set from `starting`), so nobody else would remove
        # the upload. A running one removes it when it ends.
        if queued.filter(chroot__isnull=True).update(**canceled, ended_on=timezone.now()):
            sources.discard_upload_on_commit(build.pk)
        queued.update(**canceled, ended_on=timezone.now())
        build_refresh_state(build_id=build.pk)
        cancel_push.cancel_announce(build.pk)
    build.refresh_from_db()
    return build


def build_delete(*, user, build: Build) -> None:
    """Delete a finished build, its results, and its RPMs from the repositories."""
    if not can_edit(user, build.project):
        raise PermissionDenied(f"You are not allowed to delete build {build.pk}.")
    if build.state not in FINAL_STATES:
        raise Conflict(f"Build {build.pk} is still {build.state}; cancel it first.")
    tasks = list(build.tasks.select_related("chroot"))
    build_id = build.pk
    with transaction.atomic():
        # The build, then its tasks (which the cascade deletes before the build): the
        # workers' lock order.
        Build.objects.select_for_update().filter(pk=build.pk).first()
        # Its attempts name the machine kept for its SSH access: it goes with the build.
        ssh_machine_release_with(build)
        build.delete()
        # Normally gone with its source task; this catches one a dead process left.
        sources.discard_upload_on_commit(build_id)
        # The results are the backend's (RESULTS_ROOT, the repository store): it removes
        # them and regenerates the repositories they were published in.
        send_on_commit(
            "remove_build_results",
            build.project_id,
            build.project.ownername,
            build.project_dirname,
            sorted({t.result_dir for t in tasks if t.result_dir}),
            sorted({t.chroot_id for t in tasks if t.chroot_id and t.result_files}),
        )


# --- recovery -----------------------------------------------------------------------------


def stale_tasks_reconcile() -> dict:
    """Return tasks of dead workers to the queue (or fail them after MAX_TASK_ATTEMPTS), and
    re-send tasks built but never signed; one of the reconcile tick's jobs
    (apps.workflows.reconcile). Returns how many were requeued and failed."""
    lease = timezone.now() - timedelta(seconds=settings.TASK_LEASE_SECONDS)
    stale = BuildTask.objects.before_publishing().filter(heartbeat_on__lt=lease)
    # Built but never signed (the sign message was lost): sign now instead of rebuilding.
    unsigned = stale.awaiting_signing()
    for task_id in unsigned.values_list("pk", flat=True):
        send_on_commit("publish_task", task_id)
    # An uploaded RPM not placed yet (the web role was out of reach): place it, never rebuild.
    unplaced = stale.filter(build__source_type="rpm_upload", result_files=[])
    for build_id in set(unplaced.values_list("build_id", flat=True)):
        send_on_commit("place_uploaded_rpm", build_id)
    lost = stale.exclude(pk__in=unsigned.values("pk")).exclude(pk__in=unplaced.values("pk"))
    # A job running detached on its builder goes on: another worker reattaches to it.
    reattached = tasks_reattach(
        lost.exclude(remote_job="").filter(
            builder__isnull=False, state__in=[State.STARTING, State.RUNNING]
        )
    )
    requeued = failed = 0
    for task_id, attempt, build_id in lost.values_list("pk", "attempt", "build_id"):
        task_attempt_end(task_id=task_id, outcome="builder lost: its worker stopped reporting")
        if attempt + 1 < settings.MAX_TASK_ATTEMPTS:
            requeued += task_transition(
                task_id,
                ACTIVE_STATES,
                State.PENDING,
                attempt=attempt + 1,
                builder=None,
                remote_job="",
                state_reason="builder lost (its worker stopped reporting); queued again",
            )
        else:
            lost_task = BuildTask.objects.select_related(*TASK_RELATED).filter(pk=task_id).first()
            if lost_task is not None:
                task_logs_finish(lost_task)
            failed += task_transition(
                task_id,
                ACTIVE_STATES,
                State.FAILED,
                ended_on=timezone.now(),
                state_reason=f"builder lost: its worker stopped reporting, "
                f"{attempt + 1} attempt(s) made",
            )
        build_refresh_state(build_id=build_id)
    return {"requeued": requeued, "failed": failed, "reattached": reattached}


def tasks_reattach(tasks) -> int:
    """Hand tasks whose worker died to another worker, which reattaches to their job on the
    same builder: same attempt, no new run; the dead worker's lease is void. Returns how
    many."""
    handed = 0
    for task_id, job in tasks.values_list("pk", "remote_job"):
        if task_transition(
            task_id,
            ACTIVE_STATES,
            State.STARTING,
            heartbeat_on=timezone.now(),
            lease_token="",
            state_reason=f"its worker stopped reporting; another one reattaches to job {job}",
        ):
            send_on_commit("run_task", task_id)
            handed += 1
    return handed


def uploads_reconcile() -> int:
    """Remove uploads that no build will read: their build was deleted or its source task
    ended, but the process that should have removed them died first. Returns how many."""
    left_over = sources.uploads_left_over(
        live_build_ids=live_upload_builds, older_than_seconds=sources.UPLOAD_GRACE_SECONDS
    )
    for path in left_over:
        logger.info("removing the left-over upload %s", path)
        sources.remove_upload_path(path)
    return len(left_over)


# How often a process that stores uploads sweeps the left-over ones itself (see below).
UPLOAD_SWEEP_SECONDS = 600
_last_upload_sweep = [0.0]


def uploads_reconcile_now_and_then() -> None:
    """Sweep left-over uploads from the process that stores them, at most every
    UPLOAD_SWEEP_SECONDS: when the roles run on separate hosts, the reconcile tick runs on
    the backend and cannot see the web's UPLOADS_ROOT. A failed sweep waits for the next."""
    now = time.monotonic()
    if now - _last_upload_sweep[0] < UPLOAD_SWEEP_SECONDS:
        return
    _last_upload_sweep[0] = now
    try:
        uploads_reconcile()
    except Exception:  # the submit has succeeded; a sweep's trouble is not the user's
        logger.exception("could not sweep the left-over uploads")


def upload_discard_when_done(*, build_id: int) -> bool:
    """Remove a build's stored upload once nothing will read it (its source task has ended,
    or the build is gone): what the backend asks of the web role when its task ends.
    Returns whether it was removed; a task still running keeps it."""
    if list(live_upload_builds([build_id])):
        return False
    sources.discard_upload(build_id)
    return True


def live_upload_builds(build_ids: list[int]):
    """Which of these builds have a source task that may still read their upload, or an
    uploaded RPM (copr-cli uploadrpm) that the backend has not placed yet."""
    sources_waiting = (
        BuildTask.objects.filter(build_id__in=build_ids, chroot__isnull=True)
        .exclude(state__in=list(FINAL_STATES))
        .values_list("build_id", flat=True)
    )
    rpms_waiting = BuildTask.objects.filter(
        build_id__in=build_ids,
        build__source_type="rpm_upload",
        state=State.RUNNING,
        result_files=[],
    ).values_list("build_id", flat=True)
    return {*sources_waiting, *rpms_waiting}


def machines_reconcile_send() -> None:
    """Delete the disposable machines of task attempts that no longer run (dead workers),
    the idle ones no longer wanted and those kept for SSH debugging past their time; make
    those the pools keep ready."""
    for machine_id in machines_reconcile(live=live_task_attempts()):
        send_on_commit("delete_machine", machine_id)
    # The pools' min_ready: machines made ahead of the tasks that will take them.
    for machine_id in machines_to_make_ahead():
        send_on_commit("make_machine_ahead", machine_id)


def live_task_attempts():
    """(task id, attempt) of every task that may still have a machine at work."""
    return BuildTask.objects.filter(state__in=list(ACTIVE_STATES)).values_list("pk", "attempt")


def tasks_requeue(*, user, task_ids: list[int]) -> int:
    """An operator's requeue: tasks stuck on a builder that is gone go back to the queue now,
    without waiting for reconcile's lease. Returns how many were requeued.

    Tasks already past the builder (their RPMs wait for signing or publishing) are left
    alone: running them again would build what is already built.
    """
    if not user.is_staff:
        raise PermissionDenied("Only operators requeue tasks.")
    stuck = (
        BuildTask.objects.before_publishing()
        .filter(pk__in=task_ids)
        .values_list("pk", "attempt", "build_id")
    )
    requeued = 0
    for task_id, attempt, build_id in stuck:
        if task_transition(
            task_id,
            ACTIVE_STATES,
            State.PENDING,
            attempt=attempt + 1,
            builder=None,
            state_reason=f"queued again by {user.username}",
        ):
            requeued += 1
            build_refresh_state(build_id=build_id)
    if requeued:
        send_scheduler_nudge()
    return requeued


# --- batches, checks before an upload, forks, bulk delete, RPM uploads (Copr's APIv3) ------


def check_batch_options(user, options: BuildOptions) -> None:
    """Copr's `after_build_id` / `with_build_id`: exclusive, and naming a build one may use."""
    if options.after_build_id and options.with_build_id:
        raise ServiceError("after_build_id and with_build_id are mutually exclusive.")
    if options.with_build_id:
        build = batch_build(user, options.with_build_id)
        if build.state in FINAL_STATES:
            raise ServiceError(
                f"Build {build.pk} has already {build.state}; its batch cannot take new builds."
            )
    elif options.after_build_id:
        batch_build(user, options.after_build_id)


def batch_build(user, build_id: int) -> Build:
    build = Build.objects.select_related("project").filter(pk=build_id).first()
    if build is None:
        raise ServiceError(f"Build {build_id} does not exist, so no batch can refer to it.")
    if not can_build_in(user, build.project):
        raise PermissionDenied(
            f"You cannot build in {build.project.full_name}, so you cannot use the batch "
            f"of build {build_id}."
        )
    return build


def batch_for(user, options: BuildOptions) -> Batch | None:
    """The batch a new build joins (with_build_id) or a new one blocked by (after_build_id)."""
    if not (options.with_build_id or options.after_build_id):
        return None
    other = Build.objects.select_for_update().get(
        pk=options.with_build_id or options.after_build_id
    )
    if other.batch_id is None:
        other.batch = Batch.objects.create()
        Build.objects.filter(pk=other.pk).update(batch=other.batch)
    if options.with_build_id:
        return other.batch
    return Batch.objects.create(blocked_by=other.batch)


def build_check(
    *, user, project: Project, options: BuildOptions, errors: FieldErrors | None = None
) -> None:
    """Everything build_submit checks except the source: Copr's check-before-build."""
    if not can_build_in(user, project):
        raise PermissionDenied(
            f"User '{user.username}' is not allowed to build in the project {project.full_name}."
        )
    errors = errors if errors is not None else FieldErrors()
    submission_checked(user, project, options, errors)
    errors.raise_if_any()


def builds_fork(*, source: Project, target: Project) -> list[tuple[BuildTask, BuildTask]]:
    """Copy the newest successful build of each package and chroot into a fork, as `forked`.

    Returns (original task, forked task) pairs; the caller copies and re-signs the files.
    A forked task has no end time until its files are copied (repos.forked_results_publish).
    """
    target_chroots = set(target.project_chroots.values_list("chroot_id", flat=True))
    candidates = (
        BuildTask.objects.filter(
            build__project=source,
            build__project_dirname=source.name,
            state__in=[State.SUCCEEDED, State.FORKED],
            chroot_id__in=target_chroots,
        )
        .exclude(build__package_name="")
        .without_forked_uncopied()
        .select_related("build", "chroot")
        .order_by("build_id")
    )
    newest = {(task.build.package_name, task.chroot_id): task for task in candidates}
    by_build: dict[int, list[BuildTask]] = {}
    for task in newest.values():
        by_build.setdefault(task.build_id, []).append(task)
    pairs = []
    for tasks in by_build.values():
        forked = forked_build_create(target, tasks[0].build, [t.chroot.name for t in tasks])
        for task in tasks:
            pairs.append((task, forked_task_create(forked, task)))
    return pairs


def forked_build_create(target: Project, original: Build, chroot_names: list[str]) -> Build:
    now = timezone.now()
    return Build.objects.create(
        project=target,
        project_dirname=target.name,
        package=target.packages.filter(name=original.package_name).first(),
        submitter=original.submitter,
        source_type=original.source_type,
        source_json=original.source_json,
        package_name=original.package_name,
        package_version=original.package_version,
        built_packages=original.built_packages,
        enable_net=original.enable_net,
        timeout=original.timeout,
        isolation=original.isolation,
        bootstrap=original.bootstrap,
        requested_chroots=sorted(chroot_names),
        state=State.FORKED,
        submitted_on=now,
        started_on=now,
    )


def forked_task_create(forked: Build, original: BuildTask) -> BuildTask:
    now = timezone.now()
    return BuildTask.objects.create(
        build=forked,
        chroot=original.chroot,
        state=State.FORKED,
        state_reason=f"forked from build {original.build_id}: copying and signing its RPMs",
        owner_key=forked.project.ownername,
        result_dir=f"{original.chroot.name}/{forked.pk:08d}-{forked.package_name}",
        result_files=original.result_files,
        built_packages=original.built_packages,
        forked_from=original,
        started_on=now,
        heartbeat_on=now,  # when the copy was last asked for (forked_copies_reconcile)
    )


def build_delete_many(*, user, build_ids: list[int], project: Project | None = None) -> list[int]:
    """Delete several finished builds; if any cannot be deleted, none is (Copr's delete/list).

    With `project` (the builds list's bulk delete), builds of other projects count as missing.
    """
    if not build_ids:
        raise ServiceError("Select at least one build to delete.")
    found = Build.objects.select_related("project").filter(pk__in=build_ids)
    if project is not None:
        found = found.filter(project=project)
    builds = {b.pk: b for b in found}
    problems = []
    missing = [str(i) for i in build_ids if i not in builds]
    forbidden = [str(i) for i, b in builds.items() if not can_edit(user, b.project)]
    running = [str(i) for i, b in builds.items() if b.state not in FINAL_STATES]
    if missing:
        where = f" in {project.full_name}" if project is not None else ""
        problems.append(f"Builds {', '.join(missing)} do not exist{where}.")
    if forbidden:
        problems.append(f"You are not allowed to delete builds {', '.join(forbidden)}.")
    if running:
        problems.append(f"Builds {', '.join(running)} are unfinished; cancel them first.")
    if problems:
        raise ServiceError(" ".join(problems))
    for build_id in build_ids:
        build_delete(user=user, build=builds[build_id])
    return list(build_ids)
