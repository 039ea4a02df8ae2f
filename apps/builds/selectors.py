"""Reusable reads of builds for the portal's pages: lists with filters, the queue, history.

Every function returns rows with what the pages show already joined or prefetched, so a
page of builds costs the same few queries however many builds the database holds.
"""

from datetime import timedelta

from django.db.models import Count, Exists, F, Max, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import TruncDate
from django.utils import timezone

from apps.builds.models import SOURCE_DIR, Batch, Build, BuildTask, State
from apps.packages.models import Package
from apps.projects.models import Project, owner_name

# States a task passes through before it ends; the status page counts these.
QUEUED_STATES = (State.WAITING, State.PENDING, State.STARTING, State.IMPORTING, State.RUNNING)
SOURCE_TASK_LABEL = SOURCE_DIR


def builds_for_list() -> QuerySet[Build]:
    """Builds newest first, to filter and slice, then read as rows by `build_rows`."""
    return Build.objects.order_by("-id")


BUILD_ROW_COLUMNS = (
    "id",
    "package_name",
    "submitted_on",
    "submitted_by",
    "state",
    "started_on",
    "ended_on",
)
BUILD_ROW_JOINED = {
    "owner_user": F("project__owner_user__username"),
    "owner_group": F("project__owner_group__name"),
    "project_name": F("project__name"),
    "linked_package": F("package__name"),  # set when the package has a page
    "version": F("package_version"),
    "submitter_name": F("submitter__username"),
}


def build_rows(builds: QuerySet[Build]) -> list[dict]:
    """What a row of the builds table shows, as plain values in the order of `builds`.

    Two queries, no model instances and no JSON column: a page of fifty builds with four
    chroots each would otherwise be some 700 objects to create and read through.
    """
    rows = list(builds.values(*BUILD_ROW_COLUMNS, **BUILD_ROW_JOINED))
    chroots: dict[int, list[dict]] = {row["id"]: [] for row in rows}
    tasks = (
        BuildTask.objects.filter(build__id__in_array=list(chroots), chroot__isnull=False)
        .order_by("chroot__name")
        .values_list("build_id", "chroot__name", "state")
    )
    for build_id, name, state in tasks:
        chroots[build_id].append({"name": name, "state": state})
    for row in rows:
        row["ownername"] = owner_name(row.pop("owner_user"), row.pop("owner_group"))
        row["full_name"] = f"{row['ownername']}/{row['project_name']}"
        row["chroots"] = chroots[row["id"]]
    return rows


def last_build_per_chroot(project: Project) -> list[dict]:
    """The newest build of each chroot of the project, for its overview (Copr's panel)."""
    tasks = BuildTask.objects.filter(build__project=project, chroot__isnull=False)
    # The newest build of each enabled chroot, one short query each (a walk down the builds'
    # ids that stops at the first match), then those tasks. Grouping all of the project's
    # tasks instead took 75-90 ms for 8,000 builds; DISTINCT ON is PostgreSQL's alone.
    newest = Q(pk__in=[])
    for chroot_id in project.project_chroots.values_list("chroot_id", flat=True):
        builds = Build.objects.filter(project=project, tasks__chroot_id=chroot_id)
        build_id = builds.order_by("-id").values_list("id", flat=True).first()
        if build_id is not None:
            newest |= Q(chroot_id=chroot_id, build_id=build_id)
    return list(
        tasks.filter(newest)
        .order_by("chroot__name")
        .values(
            "build_id",
            "state",
            chroot_name=F("chroot__name"),
            package_name=F("build__package_name"),
            version=F("build__package_version"),
            submitted_on=F("build__submitted_on"),
        )
    )


def recent_builds(*, limit: int = 20) -> list[dict]:
    """The newest builds of listed projects, for the home page."""
    return build_rows(builds_for_list().filter(project__unlisted_on_hp=False)[:limit])


def project_builds(
    project: Project, *, state: str = "", package: str = "", chroot: str = ""
) -> QuerySet[Build]:
    """A project's builds, filtered as the builds list page asks (each filter has an index)."""
    builds = builds_for_list().filter(project=project)
    if state:
        builds = builds.filter(state=state)
    if package:
        builds = builds.filter(package_name=package)
    if chroot:
        in_chroot = BuildTask.objects.filter(build=OuterRef("pk"), chroot__name=chroot)
        builds = builds.filter(Exists(in_chroot))
    return builds


def build_with_tasks(build_id: int) -> Build | None:
    """One build with everything its page shows; the source task sorts first."""
    tasks = (
        BuildTask.objects.select_related("chroot")
        .prefetch_related("attempts")
        .order_by(F("chroot__name").asc(nulls_first=True))
    )
    return (
        Build.objects.select_related(
            "project__owner_user", "project__owner_group", "submitter", "package", "batch"
        )
        .prefetch_related(Prefetch("tasks", queryset=tasks))
        .filter(pk=build_id)
        .first()
    )


def failure_reasons(build: Build) -> list[str]:
    """Why a build failed, from its prefetched tasks, without repeats (shown on top)."""
    reasons = [
        f"{task_label(task)}: {task.state_reason}"
        for task in build.tasks.all()
        if task.state == State.FAILED and task.state_reason
    ]
    return list(dict.fromkeys(reasons))


def task_label(task: BuildTask) -> str:
    return SOURCE_TASK_LABEL if task.chroot_id is None else task.chroot.name


def packages_with_latest_build(project: Project) -> QuerySet[Package]:
    """A project's packages, each with the id, state, version, submit time and source type of
    its newest build."""
    latest = Build.objects.filter(package=OuterRef("pk")).order_by("-id")
    return Package.objects.filter(project=project).annotate(
        latest_build_id=Subquery(latest.values("pk")[:1]),
        latest_build_state=Subquery(latest.values("state")[:1]),
        latest_build_version=Subquery(latest.values("package_version")[:1]),
        latest_build_submitted_on=Subquery(latest.values("submitted_on")[:1]),
        latest_build_source_type=Subquery(latest.values("source_type")[:1]),
    )


def latest_builds(package: Package) -> tuple[Build | None, Build | None]:
    """(latest build, latest succeeded build) of one package."""
    builds = Build.objects.filter(package=package).order_by("-id")
    return builds.first(), builds.filter(state=State.SUCCEEDED).first()


def queue_summary() -> list[dict]:
    """Unfinished tasks counted per chroot (source tasks as `srpm-builds`), arch and state."""
    rows = (
        BuildTask.objects.filter(state__in=QUEUED_STATES)
        .values("chroot__name", "chroot__arch", "state")
        .annotate(count=Count("id"))
        .order_by("chroot__arch", "chroot__name")
    )
    table: dict[tuple[str, str], dict] = {}
    for row in rows:
        name = row["chroot__name"] or SOURCE_TASK_LABEL
        arch = row["chroot__arch"] or "any"
        entry = table.setdefault((arch, name), {"arch": arch, "chroot": name, "total": 0})
        entry[row["state"]] = entry.get(row["state"], 0) + row["count"]
        entry["total"] += row["count"]
    return sorted(table.values(), key=lambda entry: (entry["arch"], entry["chroot"]))


def builds_per_day(*, days: int = 30) -> list[dict]:
    """Builds submitted on each of the last `days` days, split into succeeded/failed/other."""
    today = timezone.now().date()
    first_day = today - timedelta(days=days - 1)
    start = timezone.now() - timedelta(days=days)
    rows = (
        Build.objects.filter(submitted_on__gte=start)
        .annotate(day=TruncDate("submitted_on"))
        .values("day", "state")
        .annotate(count=Count("id"))
        .order_by()
    )
    per_day = {
        first_day + timedelta(days=offset): {"succeeded": 0, "failed": 0, "other": 0}
        for offset in range(days)
    }
    for row in rows:
        counts = per_day.get(row["day"])
        if counts is None:
            continue
        counts[outcome_of(row["state"])] += row["count"]
    return [{"day": day, **counts} for day, counts in sorted(per_day.items())]


def outcome_of(state: str) -> str:
    if state == State.SUCCEEDED:
        return "succeeded"
    if state == State.FAILED:
        return "failed"
    return "other"


# Tasks a backend still has to run or watch: Copr lists running ones too, so a restarted
# backend can pick its builds up again. Waiting tasks (blocked batches) are left out.
BACKEND_JOB_STATES = (State.PENDING, State.STARTING, State.RUNNING)


def backend_pending_tasks(*, source: bool) -> QuerySet[BuildTask]:
    """Copr's `/backend/pending-jobs/` order: normal builds before background, then by build."""
    return (
        BuildTask.objects.filter(
            state__in=BACKEND_JOB_STATES, chroot__isnull=source, build__canceled=False
        )
        .select_related(
            "chroot",
            "build__project__owner_user",
            "build__project__owner_group",
            "build__submitter",
        )
        .order_by("build__is_background", "build_id", "chroot__name")
    )


def backend_build_task(build_id: int, chroot_name: str) -> BuildTask | None:
    """One chroot task with everything its job description reads."""
    return (
        BuildTask.objects.select_related(
            "chroot",
            "build__project__owner_user",
            "build__project__owner_group",
            "build__submitter",
        )
        .filter(build_id=build_id, chroot__name=chroot_name)
        .first()
    )


def monitor_cells(project: Project, chroot_ids: list[int]) -> dict[tuple[int, int], dict]:
    """The task of each package's newest build in each chroot, keyed (package id, chroot id):
    its `build_id`, `state` and `version`, as plain values (a 1,500-package project has
    some 6,000 cells; as model instances they were most of the page's second).

    Two queries however many packages and builds: each package's newest build and its
    version (one probe of the index (package, -id) per package), then those builds' tasks
    (by build id alone: joined to the builds, PostgreSQL scanned them all). Only where a
    newest build skipped a chroot, three more find the newest build that has it.
    """
    # By package alone (a package's builds are all of its project): a walk of the index
    # (package, -id) that stops at its first entry, where the project as well made
    # PostgreSQL fetch and sort every build of the package.
    newest = Build.objects.filter(package=OuterRef("pk")).order_by("-id")
    rows = (
        Package.objects.filter(project=project)
        .annotate(
            build_id=Subquery(newest.values("id")[:1]),
            version=Subquery(newest.values("package_version")[:1]),
        )
        .values_list("build_id", "pk", "version")
    )
    # Packages without a build are left out here, not in SQL, which would run the first
    # subquery a third time.
    builds = {
        build_id: (package_id, version)
        for build_id, package_id, version in rows
        if build_id is not None
    }
    cells = task_cells(builds, chroot_ids)
    skipped = {
        package_id
        for package_id, _version in builds.values()
        if any((package_id, chroot) not in cells for chroot in chroot_ids)
    }
    if skipped:
        cells = {**older_cells(project, skipped, chroot_ids, cells), **cells}
    return cells


def task_cells(builds: dict[int, tuple[int, str]], chroot_ids: list[int]) -> dict:
    """The monitor cells of the tasks of `builds` (build id: its package id and version;
    one build per package)."""
    tasks = (
        BuildTask.objects.filter(build__id__in_array=list(builds), chroot_id__in=chroot_ids)
        .values_list("build_id", "chroot_id", "state")
        .order_by()
    )
    cells = {}
    for build_id, chroot_id, state in tasks:
        package_id, version = builds[build_id]
        cells[package_id, chroot_id] = {"build_id": build_id, "state": state, "version": version}
    return cells


def older_cells(project, packages: set[int], chroot_ids: list[int], cells: dict) -> dict:
    """The cells that the newest builds of `packages` left empty: the newest task of that
    package in that chroot, from an older build."""
    newest = (
        BuildTask.objects.filter(
            build__project=project, build__package_id__in=packages, chroot_id__in=chroot_ids
        )
        .values("build__package_id", "chroot_id")
        .annotate(newest_build=Max("build_id"))
        .order_by()
    )
    wanted = {
        (row["build__package_id"], row["chroot_id"]): row["newest_build"]
        for row in newest
        if (row["build__package_id"], row["chroot_id"]) not in cells
    }
    if not wanted:
        return {}
    builds = Build.objects.filter(pk__in_array=list(set(wanted.values())))
    found = task_cells(
        {
            pk: (package_id, version)
            for pk, package_id, version in builds.values_list("pk", "package_id", "package_version")
        },
        chroot_ids,
    )
    return {key: cell for key, cell in found.items() if wanted.get(key) == cell["build_id"]}


# What a row of a status page shows: a few columns of the task, its build, project, owner
# and chroot, not their whole rows (the JSON columns of the task and the build were most of
# what a page of a hundred tasks read and decoded).
STATUS_ROW_COLUMNS = ("build_id", "state", "queued_on")
STATUS_ROW_JOINED = {
    "chroot_name": F("chroot__name"),
    "package_name": F("build__package_name"),
    "project_name": F("build__project__name"),
    "owner_username": F("build__project__owner_user__username"),
    "owner_groupname": F("build__project__owner_group__name"),
    "submitter_name": F("build__submitter__username"),
    "submitted_by": F("build__submitted_by"),
}


def tasks_for_status(
    states, *, background: bool | None = None, source: bool | None = None
) -> QuerySet[BuildTask]:
    """Tasks in `states`, oldest in the queue first: page their ids, then read the page
    with `status_rows` (ordered by the index (state, queued_on, id) alone, with none of
    the joins a row shows)."""
    tasks = BuildTask.objects.filter(state__in=list(states))
    if source is not None:
        tasks = tasks.filter(chroot__isnull=source)
    if background is not None:
        tasks = tasks.filter(build__is_background=background)
    return tasks.order_by("queued_on", "pk")


def status_rows(tasks: QuerySet[BuildTask]) -> list[dict]:
    """A page of `tasks_for_status` as plain values, each row's owner and project named as
    Copr does."""
    rows = list(tasks.values(*STATUS_ROW_COLUMNS, **STATUS_ROW_JOINED))
    for row in rows:
        row["ownername"] = owner_name(row.pop("owner_username"), row.pop("owner_groupname"))
        row["full_name"] = f"{row['ownername']}/{row['project_name']}"
    return rows


def task_state_counts() -> dict[str, int]:
    """Unfinished tasks per state, shown on top of every status page."""
    rows = (
        BuildTask.objects.filter(state__in=QUEUED_STATES)
        .values("state")
        .annotate(count=Count("id"))
        .order_by()
    )
    counts = {state.value: 0 for state in QUEUED_STATES}
    counts.update({row["state"]: row["count"] for row in rows})
    return counts


def queue_by_owner() -> list[dict]:
    """Copr's `/status/pending/all/`: pending tasks counted per owner, project, chroot and
    background flag, most first."""
    rows = (
        BuildTask.objects.filter(state=State.PENDING)
        .values(
            "build__project__owner_user__username",
            "build__project__owner_group__name",
            "build__project__name",
            "chroot__name",
            "chroot__arch",
            "build__is_background",
        )
        .annotate(count=Count("id"))
        .order_by("-count")
    )
    return [
        {
            "owner": owner_name(
                row["build__project__owner_user__username"],
                row["build__project__owner_group__name"],
            ),
            "project": row["build__project__name"],
            "chroot": row["chroot__name"] or SOURCE_TASK_LABEL,
            "arch": row["chroot__arch"] or "any",
            "background": row["build__is_background"],
            "count": row["count"],
        }
        for row in rows
    ]


def unfinished_batches() -> list[dict]:
    """Batches with a build still going: `blocked` while the batch they wait for is
    unfinished too, `processing` otherwise (Copr's batch states)."""
    batches = list(
        Batch.objects.filter(builds__state__in=QUEUED_STATES)
        .annotate(unfinished=Count("builds", distinct=True))
        .order_by("pk")
    )
    unfinished_ids = {batch.pk for batch in batches}
    return [
        {
            "batch": batch,
            "unfinished": batch.unfinished,
            "state": "blocked" if batch.blocked_by_id in unfinished_ids else "processing",
        }
        for batch in batches
    ]


def tasks_per_chroot(*, days: int) -> list[dict]:
    """How many tasks each chroot got in the last `days` days (the stats histogram)."""
    since = timezone.now() - timedelta(days=days)
    return list(
        BuildTask.objects.filter(queued_on__gte=since, chroot__isnull=False)
        .values("chroot__name")
        .annotate(count=Count("id"))
        .order_by("-count", "chroot__name")
    )


def active_submitters(*, days: int) -> int:
    since = timezone.now() - timedelta(days=days)
    return (
        Build.objects.filter(submitted_on__gte=since, submitter__isnull=False)
        .values("submitter")
        .distinct()
        .count()
    )


def forked_tasks_uncopied() -> QuerySet[BuildTask]:
    """Forked tasks whose results wait to be copied into the fork (Copr's fork actions)."""
    return (
        BuildTask.objects.forked_uncopied()
        .select_related(
            "chroot",
            "forked_from__build__project__owner_user",
            "forked_from__build__project__owner_group",
            "build__project__owner_user",
            "build__project__owner_group",
        )
        .order_by("build__project_id", "pk")
    )
