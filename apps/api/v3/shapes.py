"""Copr's APIv3 output models (V3/schema/schemas.py): the keys clients read, times as epochs."""

import json
from collections.abc import Collection, Iterator
from datetime import datetime
from itertools import islice

import orjson
from django.conf import settings
from django.contrib.postgres.aggregates import ArrayAgg
from django.db import connection
from django.db.models import F, Func, IntegerField, OuterRef, QuerySet, Subquery, TextField
from django.db.models.functions import Cast

from apps.builds.models import Build, BuildTask, State
from apps.core.paths import repository_url, results_url
from apps.packages.models import Package
from apps.projects.models import Project, ProjectChroot, ProjectPermission, owner_name


def epoch(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value else None


# The project columns of Copr's project shape, read as they are.
PROJECT_SHAPE_COLUMNS = (
    "id",
    "name",
    "homepage",
    "contact",
    "description",
    "instructions",
    "devel_mode",
    "persistent",
    "unlisted_on_hp",
    "auto_prune",
    "additional_repos",
    "enable_net",
    "bootstrap",
    "isolation",
    "module_hotfixes",
    "appstream",
    "packit_forge_projects_allowed",
    "follow_fedora_branching",
    "repo_priority",
)


def project_shape(project: Project, chroot_names: list[str] | None = None) -> dict:
    """Copr's project shape; `chroot_names` (active, sorted) when a list read them at once."""
    if chroot_names is None:
        chroot_names = sorted(
            pc.chroot.name for pc in project.project_chroots.all() if pc.chroot.is_active
        )
    row = {column: getattr(project, column) for column in PROJECT_SHAPE_COLUMNS}
    return project_row_shape({**row, "ownername": project.ownername}, chroot_names)


def project_row_shape(row: dict, chroot_names: list[str]) -> dict:
    """Copr's project shape from the `PROJECT_SHAPE_COLUMNS` of a project and its ownername."""
    repo_url = repository_url(f"{row['ownername']}/{row['name']}")
    return {
        "id": row["id"],
        "name": row["name"],
        "ownername": row["ownername"],
        "full_name": f"{row['ownername']}/{row['name']}",
        "homepage": row["homepage"] or None,
        "contact": row["contact"] or None,
        "description": row["description"],
        "instructions": row["instructions"],
        "devel_mode": row["devel_mode"],
        "persistent": row["persistent"],
        "unlisted_on_hp": row["unlisted_on_hp"],
        "auto_prune": row["auto_prune"],
        "chroot_repos": {name: f"{repo_url}/{name}/" for name in chroot_names},
        "additional_repos": list(row["additional_repos"]),
        "enable_net": row["enable_net"],
        "bootstrap": row["bootstrap"],
        "isolation": row["isolation"],
        "module_hotfixes": row["module_hotfixes"],
        "appstream": row["appstream"],
        "packit_forge_projects_allowed": list(row["packit_forge_projects_allowed"]),
        "follow_fedora_branching": row["follow_fedora_branching"],
        "repo_priority": row["repo_priority"],
        "storage": "pulp" if settings.REPOSITORY_STORE == "pulp" else "backend",
    }


def project_shapes(projects: QuerySet[Project]) -> Iterator[dict]:
    """Shapes of many projects as plain values (no model instances: a big owner has
    hundreds), with the names of their active chroots read in one more query."""
    rows = list(
        projects.values(
            *PROJECT_SHAPE_COLUMNS,
            owner_user_name=F("owner_user__username"),
            owner_group_name=F("owner_group__name"),
        )
    )
    names: dict[int, list[str]] = {row["id"]: [] for row in rows}
    enabled = (
        ProjectChroot.objects.filter(project__in=list(names), chroot__is_active=True)
        .order_by("project_id", "chroot__name")
        .values_list("project_id", "chroot__name")
    )
    for project_id, name in enabled:
        names[project_id].append(name)
    for row in rows:
        row["ownername"] = owner_name(row["owner_user_name"], row["owner_group_name"])
        yield project_row_shape(row, names[row["id"]])


def project_chroot_shape(project_chroot: ProjectChroot) -> dict:
    project = project_chroot.project
    return {
        "mock_chroot": project_chroot.chroot.name,
        "ownername": project.ownername,
        "projectname": project.name,
        "comps_name": project_chroot.comps_name or None,
        "delete_after_days": project_chroot.delete_after_days,
        "additional_repos": list(project_chroot.additional_repos),
        "additional_packages": list(project_chroot.additional_packages),
        "additional_modules": list(project_chroot.additional_modules),
        "with_opts": list(project_chroot.with_opts),
        "without_opts": list(project_chroot.without_opts),
        "isolation": project_chroot.isolation,
    }


def build_chroot_names(build: Build) -> list[str]:
    """The chroots of its RPM tasks; before the SRPM is known, the chroots chosen at submit."""
    names = [task.chroot.name for task in build.tasks.all() if task.chroot_id]
    return sorted(names) if names else list(build.requested_chroots)


def build_shape(build: Build) -> dict:
    project = build.project
    row = {
        **{field: getattr(build, field) for field in BUILD_ROW_FIELDS if "__" not in field},
        "project__name": project.name,
        "ownername": project.ownername,
        "submitter__username": build.submitter.username if build.submitter else None,
        **{f"{name}_epoch": epoch(getattr(build, name)) for name in TIMES},
    }
    return build_row_shape(row, build_chroot_names(build))


TIMES = ("submitted_on", "started_on", "ended_on")
# What a build's APIv3 shape needs, read as plain values: no model instances, and no task
# rows (their JSON columns) for lists of thousands of builds.
BUILD_ROW_FIELDS = (
    "id",
    "state",
    "project__name",
    "project_dirname",
    "package_name",
    "package_version",
    "srpm_url",
    "submitter__username",
    "submitted_by",
    "is_background",
)


class Epoch(Func):
    """Seconds since 1970 of a datetime column, computed by the database: parsing 24,000
    timestamps in Python is most of the time of an unlimited build list."""

    output_field = IntegerField()

    @property
    def convert_value(self):
        # Both databases answer an int already; Django's int() per row and column was a
        # fifth of the CPU of a long build list.
        return self._convert_value_noop

    def as_postgresql(self, compiler, connection, **extra_context):
        template = "CAST(FLOOR(EXTRACT(EPOCH FROM %(expressions)s)) AS bigint)"
        return self.as_sql(compiler, connection, template=template, **extra_context)

    def as_sqlite(self, compiler, connection, **extra_context):
        # '%%%%s' is strftime's '%s' after the template and the driver's placeholders.
        template = "CAST(strftime('%%%%s', %(expressions)s) AS integer)"
        return self.as_sql(compiler, connection, template=template, **extra_context)


EPOCHS = {f"{name}_epoch": Epoch(name) for name in TIMES}


def build_row_shape(row: dict, chroots: list[str], results: str | None = None) -> dict:
    """Copr's build shape from a `values()` row with `ownername` added; `results` is
    `results_url()`, which a list of thousands of builds reads once."""
    results = results or results_url()
    srpm_url = row["srpm_url"]
    return {
        "id": row["id"],
        "state": row["state"],
        "projectname": row["project__name"],
        "ownername": row["ownername"],
        "repo_url": repository_url(f"{row['ownername']}/{row['project_dirname']}"),
        "source_package": {
            "name": row["package_name"] or None,
            "version": row["package_version"] or None,
            "url": f"{results}{srpm_url}" if srpm_url else None,
        },
        "submitted_on": row["submitted_on_epoch"],
        "started_on": row["started_on_epoch"],
        "ended_on": row["ended_on_epoch"],
        "submitter": row["submitter__username"] or row["submitted_by"] or None,
        "chroots": chroots,
        "project_dirname": row["project_dirname"],
        "is_background": row["is_background"],
    }


def build_shapes(builds: QuerySet[Build], *, chunk_size: int = 1000) -> Iterator[dict]:
    """The shapes of `builds` (ordered, sliced as asked), read in chunks of `chunk_size`.

    Two queries per chunk however many tasks the builds have: the build rows, and the
    chroot names of their RPM tasks, sorted by the database. The chroots chosen at submit
    stay undecoded text unless a build has no RPM task yet.
    """
    fields = (*BUILD_ROW_FIELDS, "project__owner_user__username", "project__owner_group__name")
    requested = Cast("requested_chroots", TextField())
    rows = builds.values(*fields, **EPOCHS, requested_text=requested).iterator(chunk_size)
    results = results_url()
    while chunk := list(islice(rows, chunk_size)):
        # A set: Django walks a list item by item looking for expressions.
        chroots = chroot_names_of({row["id"] for row in chunk})
        for row in chunk:
            row["ownername"] = owner_name(
                row["project__owner_user__username"], row["project__owner_group__name"]
            )
            names = chroots.get(row["id"]) or json.loads(row["requested_text"])
            yield build_row_shape(row, names, results)


def chroot_names_of(build_ids: Collection[int]) -> dict[int, list[str]]:
    """The sorted chroot names of the RPM tasks of each build (builds without any left out)."""
    tasks = BuildTask.objects.filter(build__id__in_array=build_ids, chroot__isnull=False)
    if connection.vendor == "postgresql":
        # A row per build instead of one per task: a third of the rows to read.
        by_build = tasks.order_by().values("build_id")
        names = ArrayAgg("chroot__name", order_by="chroot__name")
        return dict(by_build.annotate(names=names).values_list("build_id", "names"))
    grouped: dict[int, list[str]] = {}
    ordered = tasks.order_by("build_id", "chroot__name").values_list("build_id", "chroot__name")
    for build_id, name in ordered:
        grouped.setdefault(build_id, []).append(name)
    return grouped


def task_result_url(task: BuildTask) -> str | None:
    if not task.result_dir:
        return None
    build = task.build
    return results_url(f"{build.project.ownername}/{build.project_dirname}/{task.result_dir}/")


def build_chroot_shape(task: BuildTask) -> dict:
    return {
        "name": task.chroot.name if task.chroot_id else "srpm-builds",
        "started_on": epoch(task.started_on),
        "ended_on": epoch(task.ended_on),
        "result_url": task_result_url(task),
        "state": task.state,
    }


def nevra(package: dict) -> dict:
    return {key: package.get(key) for key in ("name", "epoch", "version", "release", "arch")}


def package_row_shape(
    row: dict, ownername: str, projectname: str, *, latest=None, succeeded=None
) -> dict:
    """Copr's package shape from the `PACKAGE_FIELDS` and `source_text` of a package in
    that project; `latest` and `succeeded` are build shapes (or None)."""
    # Read as text and decoded here: Django's JSONField decodes with the json module, at
    # a few times the cost of orjson, for each of a large project's 1,500 packages.
    source_dict = orjson.loads(row["source_text"])
    if "srpm_build_method" in source_dict:
        source_dict["source_build_method"] = source_dict.pop("srpm_build_method")
    return {
        "id": row["id"],
        "name": row["name"],
        "ownername": ownername,
        "projectname": projectname,
        "source_type": row["source_type"],
        "source_dict": source_dict,
        "auto_rebuild": row["webhook_rebuild"],
        "builds": {"latest": latest, "latest_succeeded": succeeded},
    }


def packages_for_shapes(
    packages: QuerySet[Package], *, latest: bool, succeeded: bool
) -> QuerySet[Package]:
    """Packages of one project ready for `package_shapes`: with the id of their newest
    (and newest succeeded) build as subqueries on the (package, -id) index."""
    if latest:
        packages = packages.annotate(latest_id=Subquery(newest_build_id()[:1]))
    if succeeded:
        only_succeeded = newest_build_id().filter(state=State.SUCCEEDED)[:1]
        packages = packages.annotate(succeeded_id=Subquery(only_succeeded))
    return packages


def newest_build_id() -> QuerySet:
    return Build.objects.filter(package=OuterRef("pk")).order_by("-id").values("pk")


def package_shapes(packages: QuerySet[Package], *, project: Project) -> list[dict]:
    """Shapes of packages from `packages_for_shapes`, all of `project`, with the shapes of
    all their latest builds read at once: a fixed number of queries for any number of
    packages, and plain values instead of a model instance per package."""
    latest_columns = [name for name in LATEST_BUILD_COLUMNS if name in packages.query.annotations]
    source_text = Cast("source_json", TextField())
    rows = list(packages.values(*PACKAGE_FIELDS, *latest_columns, source_text=source_text))
    wanted = {row[name] for row in rows for name in latest_columns if row[name]}
    builds = {}
    if wanted:
        latest = Build.objects.filter(pk__in_array=wanted).order_by("pk")
        builds = {shape["id"]: shape for shape in build_shapes(latest)}
    ownername = project.ownername
    return [
        package_row_shape(
            row,
            ownername,
            project.name,
            latest=builds.get(row.get("latest_id")),
            succeeded=builds.get(row.get("succeeded_id")),
        )
        for row in rows
    ]


PACKAGE_FIELDS = ("id", "name", "source_type", "webhook_rebuild")
LATEST_BUILD_COLUMNS = ("latest_id", "succeeded_id")


def permissions_shape(permissions: list[ProjectPermission]) -> dict:
    return {
        "permissions": {
            p.user.username: {"admin": p.admin, "builder": p.builder} for p in permissions
        }
    }
