"""The Pulp store: RPMs and repository metadata kept in pulp_rpm, served by Pulp's content app.

As Copr's backend keeps them (specs/copr-compat.md, "Repositories in Pulp"): one pulp_rpm
repository per project directory and chroot, named `owner/dirname/chroot` with
`retain_repo_versions: 1`; a distribution of the same name and base path; in devel mode a
second one, `owner/dirname/chroot-devel`, that gets every new publication while the public
one keeps its publication until the repositories are regenerated. Each RPM is uploaded with
the labels `build_id` and `chroot`; a run adds what is missing and removes what is no longer
wanted in one new repository version, publishes it and points the distribution(s) at it.
A project with auto_prune wants only the newest PULP_RETAIN_BUILDS builds of each package.

A run is a reconcile, not a replay: it compares what the repository version holds with what
the database wants, so a run cut short (Pulp down halfway) is simply run again.
Talks to Pulp through pulp-glue, Pulp's own client library.
"""

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from django.conf import settings
from pulp_glue.common.authentication import BasicAuthProvider
from pulp_glue.common.context import PulpContext
from pulp_glue.common.exceptions import (
    PulpEntityNotFound,
    PulpException,
    PulpHTTPError,
    PulpNoWait,
)
from pulp_glue.rpm.context import (
    PulpRpmDistributionContext,
    PulpRpmRepositoryContext,
)

from apps.repos.models import Repository
from apps.repos.stores.base import RunInfo, StoreError, StoreUnavailable, TaskContent

# Content listed per request when reading a repository version (Pulp's maximum is 1000).
PAGE_SIZE = 1000
# HTTP answers that mean "not now" rather than "never": retried like a refused connection.
RETRYABLE_STATUS = {408, 429}


class CoprsitePulpContext(PulpContext):
    """pulp-glue's context, waiting for Pulp's tasks by polling fast at first (pulp-glue
    sleeps a whole second between polls; most of our tasks end in a fraction of it)."""

    def wait_for_task(self, task, expect_cancel: bool = False):
        deadline = time.monotonic() + self.timeout.total_seconds()
        delay = 0.05
        while not self._task_finished(task, expect_cancel=expect_cancel):
            if time.monotonic() > deadline:
                raise PulpNoWait(f"Pulp task {task['pulp_href']} did not end in time")
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
            task = self.api.call("tasks_read", parameters={"task_href": task["pulp_href"]})
        return task


_contexts = threading.local()


def pulp_context() -> CoprsitePulpContext:
    """This thread's context (pulp-glue reads Pulp's API description once per context)."""
    key = (settings.PULP_URL, settings.PULP_API_ROOT, settings.PULP_USERNAME)
    cached = getattr(_contexts, "by_key", {})
    if key not in cached:
        cached[key] = CoprsitePulpContext(
            api_root=settings.PULP_API_ROOT,
            api_kwargs={
                "base_url": settings.PULP_URL,
                "auth_provider": BasicAuthProvider(settings.PULP_USERNAME, settings.PULP_PASSWORD),
            },
            timeout=settings.PULP_TASK_TIMEOUT,
        )
        _contexts.by_key = cached
    return cached[key]


@contextmanager
def pulp_errors() -> Iterator[None]:
    """Pulp's errors as the store's: a refusal fails the tasks, the rest waits and retries.

    pulp-glue reports a refused connection, a timeout and a failed Pulp task alike as a
    PulpException; all of those are worth another try later, so only an HTTP 4xx that is
    not about load or time counts as a refusal.
    """
    try:
        yield
    except PulpHTTPError as error:
        if 400 <= error.status_code < 500 and error.status_code not in RETRYABLE_STATUS:
            raise StoreError(f"Pulp refused the request ({error.status_code}): {error}") from error
        raise StoreUnavailable(f"Pulp answered {error.status_code}: {error}") from error
    except (PulpException, PulpNoWait, requests.RequestException) as error:
        raise StoreUnavailable(f"Pulp is unavailable: {error}") from error


def repository_name(repository: Repository) -> str:
    project = repository.project
    return f"{project.ownername}/{repository.project_dirname}/{repository.chroot.name}"


def devel_name(repository: Repository) -> str:
    return f"{repository_name(repository)}-devel"


class PulpStore:
    name = "pulp"

    def publish(
        self, repository: Repository, chroot_dir: Path, content: list[TaskContent]
    ) -> RunInfo:
        started = time.monotonic()
        with pulp_errors():
            context = pulp_context()
            pulp_repository = ensure_repository(context, repository_name(repository))
            version = pulp_repository.entity["latest_version_href"]
            if repository.project.devel_mode:
                # The public repository starts as it was before devel builds came (empty
                # for a new one), as createrepo's main repodata does.
                keep_public_distribution(context, repository, version)
            present = content_by_build(context, version)
            wanted: set[str] = set()
            if repository.project.auto_prune:
                content = newest_builds_per_package(content, settings.PULP_RETAIN_BUILDS)
            for task in content:
                hrefs = present.get(str(task.build_id)) or upload_task(
                    context, repository, chroot_dir, task
                )
                wanted.update(hrefs)
            held = {href for hrefs in present.values() for href in hrefs}
            if wanted != held:
                version = new_version(pulp_repository, add=wanted - held, remove=held - wanted)
            publication = ensure_publication(context, version)
            point_distributions(context, repository, publication)
        # The version holds exactly what was wanted (rpm packages are all this store adds).
        return RunInfo(duration=time.monotonic() - started, package_count=len(wanted))

    def remove_project(self, ownername: str, dirnames: list[str]) -> None:
        """Delete the project's distributions (public and devel), then its repositories.

        Their packages become orphans that Pulp's orphan cleanup removes. A name left over
        (Pulp down past the retries) does no harm: a project of the same name made later
        reconciles that repository to its own builds at its first run.
        """
        with pulp_errors():
            context = pulp_context()
            for dirname in dirnames:
                prefix = f"{ownername}/{dirname}/"
                for entity_class in (PulpRpmDistributionContext, PulpRpmRepositoryContext):
                    for href in hrefs_named_under(context, entity_class, prefix):
                        entity_class(context, pulp_href=href).delete()


def newest_builds_per_package(content: list[TaskContent], keep: int) -> list[TaskContent]:
    """Copr's retention in Pulp: each package's `keep` newest builds (by build id); the
    older ones leave the repository (their results stay until the builds are deleted)."""
    kept: dict[str, int] = defaultdict(int)
    newest_first = sorted(content, key=lambda task: task.build_id, reverse=True)
    retained = []
    for task in newest_first:
        # A build of no known package (an uploaded RPM's is named) is never pruned.
        if not task.package or kept[task.package] < keep:
            kept[task.package] += 1
            retained.append(task)
    return sorted(retained, key=lambda task: task.build_id)


def hrefs_named_under(context: PulpContext, entity_class: type, prefix: str) -> list[str]:
    """Every entity of the class whose name starts with `prefix`."""
    hrefs: list[str] = []
    while True:
        page = entity_class(context).call(
            "list",
            parameters={
                "name__startswith": prefix,
                "fields": ["pulp_href"],
                "limit": PAGE_SIZE,
                "offset": len(hrefs),
            },
        )
        hrefs += [found["pulp_href"] for found in page["results"]]
        if page["next"] is None:
            return hrefs


def ensure_repository(context: PulpContext, name: str) -> PulpRpmRepositoryContext:
    pulp_repository = PulpRpmRepositoryContext(context)
    try:
        pulp_repository.entity = {"name": name}
        pulp_repository.entity  # noqa: B018  (looks it up now: PulpEntityNotFound here)
    except PulpEntityNotFound:
        # Older versions are of no use: a publication is made from each new one at once.
        pulp_repository.create(body={"name": name, "retain_repo_versions": 1})
    return pulp_repository


def new_version(pulp_repository: PulpRpmRepositoryContext, *, add: set, remove: set) -> str:
    """One new repository version with `add` in and `remove` out; returns its href."""
    created = pulp_repository.modify(add_content=sorted(add), remove_content=sorted(remove)) or {}
    # Pulp answers with the task's result (the new version), or the task record itself.
    for href in [created.get("pulp_href", ""), *created.get("created_resources", [])]:
        if "/versions/" in href:
            return href
    pulp_repository.entity = {"name": pulp_repository.entity["name"]}
    return pulp_repository.entity["latest_version_href"]


def content_by_build(context: PulpContext, version_href: str) -> dict[str, list[str]]:
    """The packages of a repository version, by their `build_id` label."""
    found: dict[str, list[str]] = defaultdict(list)
    offset = 0
    while True:
        page = context.call(
            "content_rpm_packages_list",
            parameters={
                "repository_version": version_href,
                "fields": ["pulp_href", "pulp_labels"],
                "limit": PAGE_SIZE,
                "offset": offset,
            },
        )
        for package in page["results"]:
            found[package["pulp_labels"].get("build_id", "")].append(package["pulp_href"])
        offset += PAGE_SIZE
        if page["next"] is None:
            return found


def upload_task(
    context: PulpContext, repository: Repository, chroot_dir: Path, task: TaskContent
) -> list[str]:
    """Upload a task's (signed) RPMs with its labels; returns their content hrefs.

    Pulp keeps one content unit per package file: uploading a file it has already (a run
    cut short after its uploads) returns the existing unit, so a retry uploads harmlessly.
    """
    labels = {"build_id": str(task.build_id), "chroot": repository.chroot.name}
    hrefs = []
    for relative_path in task.relative_paths:
        with open(chroot_dir / relative_path, "rb") as rpm:
            created = context.call(
                "content_rpm_packages_upload", body={"file": rpm, "pulp_labels": labels}
            )
        hrefs.append(created["pulp_href"])
    return hrefs


def ensure_publication(context: PulpContext, version_href: str) -> str:
    existing = context.call(
        "publications_rpm_rpm_list",
        parameters={"repository_version": version_href, "limit": 1},
    )
    if existing["count"]:
        return existing["results"][0]["pulp_href"]
    created = context.call("publications_rpm_rpm_create", body={"repository_version": version_href})
    if "created_resources" in created:  # a task record (older Pulp): what it made
        return next(href for href in created["created_resources"] if "/publications/" in href)
    return created["pulp_href"]


def point_distributions(context: PulpContext, repository: Repository, publication: str) -> None:
    """The public distribution serves the new publication, except in devel mode where only
    the devel one does until a regenerate asks for the main repository (or the public one
    has never served anything)."""
    public = repository_name(repository)
    if not repository.project.devel_mode:
        ensure_distribution(context, public, publication)
        return
    ensure_distribution(context, devel_name(repository), publication)
    main_requested = repository.main_requested_serial > repository.published_serial
    ensure_distribution(context, public, publication, keep_existing=not main_requested)


def keep_public_distribution(context: PulpContext, repository: Repository, version: str) -> None:
    """Give a devel-mode repository's public distribution a publication before new content
    comes in. A distributed version is protected from `retain_repo_versions`, so the
    publication the public distribution keeps stays served until a regenerate moves it."""
    distribution = PulpRpmDistributionContext(context)
    try:
        distribution.entity = {"name": repository_name(repository)}
        if distribution.entity.get("publication"):
            return
    except PulpEntityNotFound:
        pass
    ensure_distribution(context, repository_name(repository), ensure_publication(context, version))


def ensure_distribution(
    context: PulpContext, name: str, publication: str, *, keep_existing: bool = False
) -> None:
    distribution = PulpRpmDistributionContext(context)
    try:
        distribution.entity = {"name": name}
        current = distribution.entity
    except PulpEntityNotFound:
        distribution.create(body={"name": name, "base_path": name, "publication": publication})
        return
    if current.get("publication") == publication:
        return
    if keep_existing and current.get("publication"):
        return
    distribution.update(body={"publication": publication})
