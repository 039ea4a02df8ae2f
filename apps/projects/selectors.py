"""Reads of projects for the list pages (home, search, all projects, an owner's, a user's)."""

from django.db.models import F, QuerySet

from apps.projects.models import Project, ProjectChroot, owner_name

PROJECT_ROW_COLUMNS = ("id", "name", "description")
PROJECT_ROW_JOINED = {
    "owner_username": F("owner_user__username"),
    "owner_groupname": F("owner_group__name"),
}


def project_rows(
    projects: QuerySet[Project], *, with_chroots: bool = True, columns: tuple[str, ...] = ()
) -> list[dict]:
    """What a row of the projects table shows, as plain values in the order of `projects`.

    Two queries and no model instances: a page of thirty projects with their owners and
    chroots would otherwise be some 150 objects, each with every column of its table.
    `columns` adds more of the project's own columns.
    """
    rows = list(projects.values(*PROJECT_ROW_COLUMNS, *columns, **PROJECT_ROW_JOINED))
    chroots: dict[int, list[str]] = {row["id"]: [] for row in rows}
    if with_chroots and chroots:
        enabled = (
            ProjectChroot.objects.filter(project__id__in_array=list(chroots))
            .order_by("chroot__name")
            .values_list("project_id", "chroot__name")
        )
        for project_id, name in enabled:
            chroots[project_id].append(name)
    for row in rows:
        row["ownername"] = owner_name(row.pop("owner_username"), row.pop("owner_groupname"))
        row["full_name"] = f"{row['ownername']}/{row['name']}"
        row["chroots"] = chroots[row["id"]]
    return rows
