"""Every write to published repositories: signing keys, signing RPMs, store runs (createrepo_c
or Pulp, apps/repos/stores)."""

import contextlib
import fcntl
import logging
import os
import re
import shutil
import threading
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.builds.lifecycle import task_end
from apps.builds.logs import backend_log, task_result_dir
from apps.builds.models import SOURCE_DIR, TASK_RELATED, Build, BuildTask, State
from apps.core.gone import Gone
from apps.core.paths import (
    PathEscape,
    chroot_results_dir,
    confined_rmtree,
    project_results_dir,
    results_path,
)
from apps.core.queue import send_later, send_on_commit
from apps.projects.models import Chroot, Project
from apps.repos import gpg
from apps.repos.models import KeyState, Repository, SigningKey
from apps.repos.stores import configured_store
from apps.repos.stores.base import StoreError, StoreUnavailable, TaskContent

logger = logging.getLogger(__name__)
# While more builds of a repository are on their way, its runs are at least this far apart.
RUN_SPACING_SECONDS = 2.0
# Tasks signed in one rpmsign run at most; the rest wait for the next session.
SIGN_BATCH_MAX = 50
# While more builds of a project are on their way, its built tasks wait this long for
# company before they are signed (see signing_wait).
SIGN_SPACING_SECONDS = 2.0
# A store that cannot be reached (Pulp down) is tried again after 2, 4, 8… seconds, at most
# this far apart; reconcile's tick nudges a repository that waits too.
STORE_RETRY_MAX_SECONDS = 120


# --- signing keys -------------------------------------------------------------------------


def project_key_request(*, project: Project) -> None:
    """Ask for the project's key to be made off the request path (it takes seconds)."""

    SigningKey.objects.get_or_create(project=project)
    send_on_commit("generate_project_key", project.pk)


def project_key_ensure(*, project: Project) -> SigningKey:
    """Make (or find) the project's key and publish its public part as pubkey.gpg."""
    info = gpg.generate_project_key(
        keys_root=Path(settings.KEYS_ROOT),
        owner=project.ownername,
        project=project.name,
        sign_domain=settings.SIGN_DOMAIN,
    )
    with transaction.atomic():
        # The project's row locked: a delete waits for this commit, then removes pubkey.gpg
        # with the project's directory. Deleted already: no row, and no directory made again.
        if not Project.objects.select_for_update().filter(pk=project.pk).exists():
            raise Gone(f"project {project.full_name} was deleted while its key was made")
        key, _ = SigningKey.objects.update_or_create(
            project=project,
            defaults={
                "state": KeyState.READY,
                "fingerprint": info.fingerprint,
                "uid": f"{info.uid_name} <{info.uid_email}>",
                "public_key": info.public_key,
                "error": "",
            },
        )
        pubkey = project_results_dir(project.ownername, project.name) / "pubkey.gpg"
        pubkey.parent.mkdir(parents=True, exist_ok=True)
        pubkey.write_text(info.public_key)
    return key


# --- publishing a task's RPMs -------------------------------------------------------------


def project_publish(*, project: Project, task_id: int | None = None) -> None:
    """Sign the project's built tasks that wait for it and queue their repositories.

    All waiting tasks are signed in one session: when builds finish faster than one signing
    takes, they queue up, and one rpmsign run over all of them costs far less than one
    per task (key lookup, gpg-agent start, process spawns). The tasks stay `running` until
    a createrepo run that started after the signing has finished: only then can dnf
    install what they built. While more builds of the project are on their way, the
    signing waits a little for them (signing_wait); `task_id` names the task whose message
    this call answers.

    A call that finds another session signing for the project returns at once instead of
    holding a worker thread until that session ends (in a burst, those waits kept the
    messages that start builds from reaching a thread): the session in progress looks for
    more tasks after releasing the lock, and signs the ones that came in meanwhile.
    """
    oldest = (
        tasks_awaiting_signing(project)
        .order_by(F("heartbeat_on").asc(nulls_last=True), "pk")
        .first()
    )
    if (wait := signing_wait(project, oldest)) > 0:
        # One delayed call per held-back group, sent for its oldest task: a later task's
        # call finds it already on its way. Lost with a crashed worker at worst: reconcile
        # re-sends tasks built but not signed.
        if task_id is None or oldest.pk == task_id:
            send_later("publish_project", project.pk, delay_seconds=wait)
        return
    while project_publish_session(project=project):
        # Checked after releasing: a task that came in meanwhile either is seen here or
        # its own call finds the lock free.
        if not tasks_awaiting_signing(project).exists():
            break


def signing_wait(project: Project, oldest: BuildTask | None) -> float:
    """Seconds to hold back signing so that builds finishing in a stream share sessions;
    `oldest` is the task that has waited longest for signing.

    A session costs some 0.15 s beyond its signatures (rpmsign and gpg processes, a
    gpg-agent started and stopped); a burst of 200 builds made 200 of them. While more
    builds of the project are on their way, what is built waits until its oldest task has
    waited SIGN_SPACING_SECONDS; a lone build is signed at once.
    """
    if oldest is None or oldest.heartbeat_on is None or not more_tasks_building(project):
        return 0.0
    waited = (timezone.now() - oldest.heartbeat_on).total_seconds()
    return max(0.0, SIGN_SPACING_SECONDS - waited)


def more_tasks_building(project: Project) -> bool:
    """Whether tasks of the project are queued or on a builder (they will want signing)."""
    return BuildTask.objects.still_building().filter(build__project=project).exists()


def project_publish_session(*, project: Project) -> bool:
    """One signing session over what waits; False when another session holds the lock."""
    try:
        key = SigningKey.objects.filter(project=project, state=KeyState.READY).first()
        if key is None:
            key = project_key_ensure(project=project)
        with gpg.signing_session(
            keys_root=Path(settings.KEYS_ROOT),
            owner=project.ownername,
            project=project.name,
            fingerprint=key.fingerprint,
            wait=False,
        ) as signer:
            if signer is None:
                return False
            # Read under the project's signing lock: what another session took is signed.
            tasks = list(tasks_awaiting_signing(project)[:SIGN_BATCH_MAX])
            signed, failed = tasks_sign(signer, tasks)
            tasks_queue_publishing(signed)
    except gpg.SigningError as error:  # no usable key: nothing of the project can be signed
        failed = [(task, str(error)) for task in tasks_awaiting_signing(project)]
    for task, error in failed:
        tasks_fail_signing(task, error)
    return True


def tasks_awaiting_signing(project: Project):
    """Tasks built and off their builder, not yet signed (see BuildTask.awaits_signing)."""
    return (
        BuildTask.objects.awaiting_signing()
        .filter(build__project=project)
        .select_related(*TASK_RELATED)
        .order_by("pk")
    )


def task_rpm_paths(task: BuildTask) -> list[Path]:
    build = task.build
    result_dir = project_results_dir(build.project.ownername, build.project_dirname)
    return [result_dir / task.result_dir / name for name in task.result_files]


def tasks_sign(
    signer: gpg.Signer, tasks: list[BuildTask]
) -> tuple[list[BuildTask], list[tuple[BuildTask, str]]]:
    """Sign the tasks' RPMs; returns the signed tasks and the failed ones with the error."""
    try:
        signer.sign([path for task in tasks for path in task_rpm_paths(task)])
        return tasks, []
    except gpg.SigningError as error:
        if len(tasks) == 1:
            return [], [(tasks[0], str(error))]
    # One broken package must not fail the others: sign task by task to find it.
    signed, failed = [], []
    for task in tasks:
        try:
            signer.sign(task_rpm_paths(task))
            signed.append(task)
        except gpg.SigningError as error:
            failed.append((task, str(error)))
    return signed, failed


def tasks_queue_publishing(tasks: list[BuildTask]) -> None:
    """Ask each repository once for a run that includes these signed tasks."""
    by_repository = defaultdict(list)
    for task in tasks:
        by_repository[(task.build.project_dirname, task.chroot)].append(task.pk)
        task_backend_log(task, f"signed {len(task.result_files)} package(s)")
    with transaction.atomic():
        for (dirname, chroot), task_ids in by_repository.items():
            repository = repository_for(tasks[0].build.project, dirname, chroot)
            serial = repository_bump(repository, main=False)
            BuildTask.objects.filter(pk__in=task_ids).update(publish_serial=serial)


def tasks_fail_signing(task: BuildTask, error: str) -> None:
    remove_task_rpms(task)
    task_end(task=task, state=State.FAILED, reason=f"signing failed: {error}")


def remove_task_rpms(task: BuildTask) -> None:
    for path in task_rpm_paths(task):
        path.unlink(missing_ok=True)


def repository_for(project: Project, project_dirname: str, chroot: Chroot) -> Repository:
    repository, _ = Repository.objects.get_or_create(
        project=project, project_dirname=project_dirname, chroot=chroot
    )
    return repository


def repository_bump(repository: Repository, *, main: bool) -> int:
    """Record that the repository must be regenerated; returns the serial to wait for.

    `main` is false for new builds: a project in devel mode publishes those only into
    devel/repodata until its owner regenerates the repositories.
    """
    serial = F("requested_serial") + 1
    changes = {"requested_serial": serial, **({"main_requested_serial": serial} if main else {})}
    Repository.objects.filter(pk=repository.pk).update(**changes)
    repository.refresh_from_db(fields=["requested_serial"])

    send_on_commit("regenerate_repository", repository.pk)
    return repository.requested_serial


def repositories_request_publish(
    *, project: Project, project_dirname: str, chroots: list[Chroot]
) -> None:
    """Regenerate the given chroot repositories, the main repodata included (after a delete,
    a fork, or on request)."""
    for chroot in {c.pk: c for c in chroots}.values():
        repository_bump(repository_for(project, project_dirname, chroot), main=True)


# --- store runs, serialized per repository and coalesced ----------------------------------


def repository_regenerate(*, repository_id: int, attempt: int = 0) -> int:
    """Publish the repository until it has caught up with every request; returns runs.

    Only one process works on a repository at a time (a lease in its row). Requests that
    arrive during a run are picked up by the same process in its next loop, so many builds
    finishing together cause few runs. `attempt` counts the runs before this one that
    found the store unavailable (the retry's backoff).
    """
    runs = 0
    while (lease := RepositoryLease.take(repository_id)) is not None:
        with lease:
            repository = Repository.objects.select_related(
                "project__owner_user", "project__owner_group", "chroot"
            ).get(pk=repository_id)
            if repository.is_current:
                pass
            elif (wait := coalescing_wait(repository)) > 0:
                regenerate_later(repository_id, wait)
                return runs
            elif repository_run(repository, attempt=attempt):
                runs += 1
            else:
                return runs  # the store is unavailable: a later message tries again
        # Checked after releasing: a request that came in meanwhile either is seen here or
        # finds the lease free and starts its own run.
        if Repository.objects.get(pk=repository_id).is_current:
            break
    return runs


class RepositoryLease:
    """The right to regenerate one repository, renewed by a thread while it is held.

    A lease, not an hour-long lock (STYLE.md rule 14): a worker that dies holding it stops
    renewing, the lease runs out within REPOSITORY_LEASE_SECONDS, and the reconcile tick
    sends the repository to another worker (repositories_reconcile). The expiry a holder
    wrote is its token: renewal and release are compare-and-set on it, so a holder that
    stalled past its expiry can neither extend nor free a lease another worker took over.
    """

    def __init__(self, repository_id: int, expires: datetime) -> None:
        self.repository_id = repository_id
        self.expires = expires
        self.released = threading.Event()
        self.renewer = threading.Thread(
            target=self._renew_until_released, name=f"lease-{repository_id}", daemon=True
        )

    @classmethod
    def take(cls, repository_id: int) -> "RepositoryLease | None":
        """The lease if it is free (never taken, released, or run out), else None."""
        now = timezone.now()
        expires = now + timedelta(seconds=settings.REPOSITORY_LEASE_SECONDS)
        taken = (
            Repository.objects.filter(pk=repository_id)
            .exclude(locked_until__gt=now)
            .update(locked_until=expires)
        )
        return cls(repository_id, expires) if taken == 1 else None

    def __enter__(self) -> "RepositoryLease":
        self.renewer.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.released.set()
        self.renewer.join()
        self._held().update(locked_until=None)

    def _held(self):
        return Repository.objects.filter(pk=self.repository_id, locked_until=self.expires)

    def _renew_until_released(self) -> None:
        # A third of the lease: one renewal may fail (a database hiccup) before it runs out.
        interval = settings.REPOSITORY_LEASE_SECONDS / 3
        try:
            while not self.released.wait(interval):
                expires = timezone.now() + timedelta(seconds=settings.REPOSITORY_LEASE_SECONDS)
                try:
                    renewed = self._held().update(locked_until=expires)
                except DatabaseError:
                    logger.warning("could not renew the lease of repository %s", self.repository_id)
                    connection.close()  # the next attempt reconnects
                    continue
                if renewed != 1:
                    # Taken over after a stall: the other run publishes; createrepo's flock
                    # keeps the two runs from writing repodata/ at once.
                    logger.warning("lost the lease of repository %s", self.repository_id)
                    return
                self.expires = expires
        finally:
            connection.close()  # this thread's own connection


def coalescing_wait(repository: Repository) -> float:
    """Seconds to hold back a run so that builds finishing in a stream share runs.

    Only while more builds of the repository are on their way: a lone build is
    published at once, a stream of them costs one run per RUN_SPACING_SECONDS.
    """
    if repository.last_run_on is None:
        return 0.0
    since = (timezone.now() - repository.last_run_on).total_seconds()
    if since >= RUN_SPACING_SECONDS or not more_builds_coming(repository):
        return 0.0
    return RUN_SPACING_SECONDS - since


def more_builds_coming(repository: Repository) -> bool:
    tasks = repository_tasks(repository)
    return (tasks.filter(state=State.PENDING) | tasks.before_publishing()).exists()


def regenerate_later(repository_id: int, seconds: float, attempt: int = 0) -> None:

    # Lost with a crashed worker at worst: repositories_reconcile finds the repository behind.
    send_later("regenerate_repository", repository_id, attempt, delay_seconds=seconds)


def store_retry_seconds(attempt: int) -> float:
    return float(min(STORE_RETRY_MAX_SECONDS, 2 ** (attempt + 1)))


def repository_run(repository: Repository, *, attempt: int = 0) -> bool:
    """One run of the configured store; False when the store could not be reached (the
    tasks stay in publishing and a retry is on its way)."""
    serial = repository.requested_serial
    project = repository.project
    directory = chroot_results_dir(
        project.ownername, repository.project_dirname, repository.chroot.name
    )
    drop_canceled_tasks(repository)
    try:
        with owner_results_locked(project.ownername, exclusive=False):
            info = configured_store().publish(repository, directory, published_content(repository))
    except StoreUnavailable as error:
        wait = store_retry_seconds(attempt)
        logger.warning("repository %s waits %.0f s for its store: %s", repository, wait, error)
        Repository.objects.filter(pk=repository.pk).update(last_error=str(error))
        regenerate_later(repository.pk, wait, attempt=attempt + 1)
        return False
    except StoreError as error:
        if not Repository.objects.filter(pk=repository.pk).exists():
            # Its project was deleted and its directory removed under the run.
            raise Gone(f"repository {directory} was deleted during its run") from error
        logger.error("publishing failed for %s: %s", directory, error)
        tasks_fail_publishing(repository, serial, str(error))
        Repository.objects.filter(pk=repository.pk).update(
            published_serial=serial, last_error=str(error)
        )
        return True
    with transaction.atomic():
        Repository.objects.filter(pk=repository.pk).update(
            published_serial=serial,
            runs=F("runs") + 1,
            last_run_on=timezone.now(),
            last_run_seconds=info.duration,
            package_count=info.package_count,
            last_error="",
        )
        tasks_mark_published(repository, serial)
    return True


def tasks_fail_publishing(repository: Repository, serial: int, error: str) -> None:
    """A repository that cannot be regenerated must not keep its builds running forever."""
    for task in tasks_waiting_for(repository, serial):
        BuildTask.objects.filter(pk=task.pk).update(publish_serial=None)
        task_end(task=task, state=State.FAILED, reason=f"publishing failed: {error}")


def repository_tasks(repository: Repository):
    return BuildTask.objects.filter(
        build__project=repository.project,
        build__project_dirname=repository.project_dirname,
        chroot=repository.chroot,
    )


def published_content(repository: Repository) -> list[TaskContent]:
    """RPMs the repository lists: succeeded tasks and signed ones waiting for this run."""
    tasks = repository_tasks(repository)
    published = tasks.filter(state__in=[State.SUCCEEDED, State.FORKED]) | tasks.publishing()
    rows = published.without_forked_uncopied()  # see forked_results_publish
    content = []
    rows = rows.values_list("build_id", "result_dir", "result_files", "build__package_name")
    for build_id, result_dir, result_files, package in rows.order_by("pk"):
        if not result_files:
            continue
        subdir = result_dir.split("/", 1)[1]  # result_dir is "<chroot>/<build dir>"
        paths = tuple(f"{subdir}/{name}" for name in result_files)
        content.append(TaskContent(build_id=build_id, relative_paths=paths, package=package))
    return content


def drop_canceled_tasks(repository: Repository) -> None:
    """A build canceled while its RPMs waited for publishing publishes nothing."""
    waiting = (
        repository_tasks(repository)
        .publishing()
        .filter(build__canceled=True)
        .select_related(*TASK_RELATED)
    )
    for task in waiting:
        remove_task_rpms(task)
        BuildTask.objects.filter(pk=task.pk).update(result_files=[], publish_serial=None)
        task_end(task=task, state=State.CANCELED, reason="canceled by the user")


def tasks_mark_published(repository: Repository, serial: int) -> None:
    for task in tasks_waiting_for(repository, serial).select_related(*TASK_RELATED):
        task_backend_log(task, f"published in the {repository.chroot.name} repository")
        task_end(task=task, state=State.SUCCEEDED)


def task_backend_log(task: BuildTask, message: str) -> None:
    directory = task_result_dir(task)
    # A build deleted meanwhile takes its directory along: nobody will read the line.
    with contextlib.suppress(FileNotFoundError):
        backend_log(directory, message)


def tasks_waiting_for(repository: Repository, serial: int):
    # Ended in build order, so that builds are locked in the order a project delete locks them.
    return (
        repository_tasks(repository)
        .publishing()
        .filter(publish_serial__lte=serial)
        .order_by("build_id", "pk")
    )


def repositories_reconcile() -> int:
    """Re-nudge repositories behind their requests whose lease is free; returns how many."""

    behind = Repository.objects.filter(requested_serial__gt=F("published_serial")).exclude(
        locked_until__gt=timezone.now()
    )
    ids = list(behind.values_list("pk", flat=True))
    for repository_id in ids:
        send_on_commit("regenerate_repository", repository_id)
    return len(ids)


def build_results_remove(*, ownername: str, project_dirname: str, result_dirs: list[str]) -> None:
    """Remove a deleted build's task directories (`<chroot>/<build dir>`, `srpm-builds/…`)."""
    for result_dir in result_dirs:
        confined_rmtree(settings.RESULTS_ROOT, ownername, project_dirname, result_dir)


def project_results_remove(*, ownername: str, dirnames: list[str]) -> None:
    """Remove a deleted project's directories (its main dir and its `:custom:`/`:pr:` dirs).

    A project of the same name may have been made again before this message ran (scripts
    delete and re-create at once): then only the deleted builds' directories go, and the
    new project's repositories are published again without them. The owner's lock keeps
    the decision and the removal from interleaving with a run of the new project's store.

    Each must be a directory of the owner's tree: a hostile name such as `..` is refused,
    never resolved to RESULTS_ROOT or another owner's tree.
    """
    trash = owner_trash_dir(ownername)
    for dirname in dirnames:
        with owner_results_locked(ownername, exclusive=True):
            live = live_repositories(ownername, dirname)
            if live:
                move_stale_build_dirs(ownername, dirname, live, trash)
            elif move_to_trash(ownername, dirname, trash):
                configured_store().remove_project(ownername, [dirname])
        for repository in live:
            with contextlib.suppress(Repository.DoesNotExist):  # deleted in turn meanwhile
                repository_bump(repository, main=True)
    shutil.rmtree(trash, ignore_errors=True)


def live_repositories(ownername: str, dirname: str) -> list[Repository]:
    projects = Project.objects.by_ownername(ownername)
    return list(
        Repository.objects.filter(project__in=projects, project_dirname=dirname).select_related(
            "chroot"
        )
    )


@contextlib.contextmanager
def owner_results_locked(ownername: str, *, exclusive: bool):
    """A flock on the owner's results directory: shared by store runs, exclusive while a
    deleted project's directories are judged and moved away."""
    owner_dir = results_path(ownername)
    owner_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(owner_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def owner_trash_dir(ownername: str) -> Path:
    """Where removed directories wait for their rmtree (a rename is instant; the rmtree of a
    large project happens after the owner's lock is released)."""
    return results_path(ownername, f".removed-{uuid.uuid4().hex}")


def move_to_trash(ownername: str, relative: str, trash: Path) -> bool:
    """Move `<owner>/<relative>` into the trash; False if it is not a confined directory."""
    try:
        path = results_path(ownername, relative)
    except PathEscape as error:
        logger.error("refusing to remove %s/%s: %s", ownername, relative, error)
        return False
    if path.is_dir():
        target = trash / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        path.rename(target)
    return True


BUILD_DIR = re.compile(r"^(\d{8,})(-|$)")


def move_stale_build_dirs(
    ownername: str, dirname: str, live: list[Repository], trash: Path
) -> None:
    """Trash the build directories (`<chroot>/<id>-<name>`, `srpm-builds/<id>`) of builds
    that no longer exist, and chroot directories no live repository uses."""
    project_dir = results_path(ownername, dirname)
    if not project_dir.is_dir():
        return
    build_ids = set(
        Build.objects.filter(
            project__in=Project.objects.by_ownername(ownername), project_dirname=dirname
        ).values_list("pk", flat=True)
    )
    chroots = {repository.chroot.name for repository in live} | {SOURCE_DIR}
    for chroot_dir in project_dir.iterdir():
        if not chroot_dir.is_dir():
            continue
        if chroot_dir.name not in chroots:
            move_to_trash(ownername, f"{dirname}/{chroot_dir.name}", trash)
            continue
        for entry in chroot_dir.iterdir():
            match = BUILD_DIR.match(entry.name)
            if match and int(match.group(1)) not in build_ids:
                move_to_trash(ownername, f"{dirname}/{chroot_dir.name}/{entry.name}", trash)


# --- RPMs that arrive already built: copr-cli uploadrpm, forks ------------------------------


def forked_results_request(*, project: Project, tasks: list[tuple[BuildTask, BuildTask]]) -> None:
    """Queue the copy, re-signing and publishing of forked tasks (in the fork's transaction)."""

    if tasks:
        pairs = [[original.pk, forked.pk] for original, forked in tasks]
        send_on_commit("publish_fork", project.pk, pairs)


# A fork's copy is one sign message of at most an hour (publish_fork's time limit) plus its
# retries: a copy not ended long after it was asked for lost its message or its worker.
FORK_COPY_PATIENCE = timedelta(minutes=75)


def forked_copies_reconcile() -> int:
    """Ask again for forked tasks' copies that waited past FORK_COPY_PATIENCE, up to
    MAX_TASK_ATTEMPTS times; then end them without files, saying why. Returns how many
    were asked for again."""
    now = timezone.now()
    overdue = BuildTask.objects.forked_uncopied().filter(heartbeat_on__lt=now - FORK_COPY_PATIENCE)
    given_up = overdue.filter(attempt__gte=settings.MAX_TASK_ATTEMPTS - 1)
    for task_id, build_id in given_up.values_list("pk", "build_id"):
        with transaction.atomic():
            BuildTask.objects.filter(pk=task_id, ended_on__isnull=True).update(
                ended_on=now,
                result_files=[],
                state_reason="fork could not copy or sign the results: "
                f"{settings.MAX_TASK_ATTEMPTS} attempts did not finish; fork again",
            )
            Build.objects.filter(pk=build_id, ended_on__isnull=True).update(ended_on=now)
    pairs_by_project = defaultdict(list)
    retried = overdue.filter(attempt__lt=settings.MAX_TASK_ATTEMPTS - 1)
    for task_id, original_id, project_id in retried.values_list(
        "pk", "forked_from_id", "build__project_id"
    ):
        # An original deleted meanwhile (0: no such task) ends the copy with that reason.
        pairs_by_project[project_id].append([original_id or 0, task_id])
    with transaction.atomic():
        for project_id, pairs in pairs_by_project.items():
            asked = BuildTask.objects.filter(
                pk__in=[forked for _, forked in pairs], ended_on__isnull=True
            ).update(heartbeat_on=now, attempt=F("attempt") + 1)
            if asked:
                send_on_commit("publish_fork", project_id, pairs)
    return sum(len(pairs) for pairs in pairs_by_project.values())


def forked_results_publish(*, project: Project, task_pairs: list[list[int]]) -> None:
    """Copy forked builds' results, sign their RPMs with the fork's key, regenerate repos.

    A fork's RPMs must carry the fork's signature: dnf checks them against its pubkey.gpg.
    `task_pairs` are [original task id, forked task id]; a forked task already copied (a
    redelivered message) is left alone, and one whose original or files went away meanwhile
    ends with the reason and no files.
    """
    original_of = {forked_id: original_id for original_id, forked_id in task_pairs}
    copying = list(
        BuildTask.objects.forked_uncopied()
        .filter(pk__in=original_of)
        .select_related("build", "chroot")
        .order_by("pk")
    )
    if not copying:
        return
    originals = BuildTask.objects.select_related("build__project").in_bulk(
        [original_of[task.pk] for task in copying]
    )
    key = SigningKey.objects.filter(project=project, state=KeyState.READY).first()
    if key is None:
        key = project_key_ensure(project=project)
    failed: dict[int, str] = {}
    with gpg.signing_session(
        keys_root=Path(settings.KEYS_ROOT),
        owner=project.ownername,
        project=project.name,
        fingerprint=key.fingerprint,
    ) as signer:
        for task in copying:
            original = originals.get(original_of[task.pk])
            try:
                if original is None:
                    raise FileNotFoundError("the original build was deleted before the copy")
                signer.sign(forked_results_copy(project, original, task))
            except (OSError, gpg.SigningError) as error:
                logger.info("fork of task %s not copied: %s", task.task_id, error)
                failed[task.pk] = str(error)
    forked_tasks_end(project, copying, originals, original_of, failed)


def forked_results_copy(project: Project, original: BuildTask, forked: BuildTask) -> list[Path]:
    """Copy an original task's result dir into the fork; returns the RPMs to re-sign."""
    source_build = original.build
    source_dir = (
        project_results_dir(source_build.project.ownername, source_build.project_dirname)
        / original.result_dir
    )
    target_dir = project_results_dir(project.ownername, project.name) / forked.result_dir
    shutil.copytree(source_dir, target_dir, dirs_exist_ok=True)
    return [target_dir / name for name in forked.result_files]


def forked_tasks_end(project, copying, originals, original_of, failed: dict[int, str]) -> None:
    """End the copied tasks (compare-and-set on the missing end time) and publish them."""
    now = timezone.now()
    with transaction.atomic():
        for task in copying:
            original = originals.get(original_of[task.pk])
            reason = f"forked from build {original.build_id}" if original else "forked"
            changes = {"ended_on": now, "state_reason": reason}
            if task.pk in failed:
                changes.update(
                    result_files=[],
                    state_reason=f"fork could not copy or sign the results: {failed[task.pk]}",
                )
            BuildTask.objects.filter(pk=task.pk, ended_on__isnull=True).update(**changes)
        Build.objects.filter(pk__in={task.build_id for task in copying}).update(ended_on=now)
        repositories_request_publish(
            project=project,
            project_dirname=project.name,
            chroots=[task.chroot for task in copying],
        )
