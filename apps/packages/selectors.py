"""Reusable reads of packages: a project's packages with their latest and latest good builds."""

from django.db.models import OuterRef, QuerySet, Subquery

from apps.builds.models import Build, State
from apps.packages.models import Package


def packages_with_latest_builds(project) -> QuerySet[Package]:
    """The project's packages, each annotated with `latest_build_id` and
    `latest_succeeded_build_id` (None when there is none), in one query."""
    builds = Build.objects.filter(package=OuterRef("pk")).order_by("-id")
    return Package.objects.filter(project=project).annotate(
        latest_build_id=Subquery(builds.values("id")[:1]),
        latest_succeeded_build_id=Subquery(builds.filter(state=State.SUCCEEDED).values("id")[:1]),
    )


def latest_builds(package: Package) -> tuple[Build | None, Build | None]:
    """(latest build, latest succeeded build) of one package."""
    builds = Build.objects.filter(package=package).order_by("-id")
    return builds.first(), builds.filter(state=State.SUCCEEDED).first()
