"""Site-wide pages: home, search, the build queue status, and user pages."""

from urllib.parse import urlencode

from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_safe

from apps.accounts.models import Group, User
from apps.builds import selectors
from apps.builds.models import Build
from apps.packages.models import Package
from apps.projects.models import Project
from apps.projects.pages import CappedPaginator, projects_page
from apps.projects.selectors import project_rows
from apps.site.chart import builds_chart

RECENT_BUILDS = 20
RECENT_PROJECTS = 10
SEARCH_RESULTS_PER_PAGE = 30
CHART_DAYS = 30


@require_safe
def home(request):
    context = {
        "builds": selectors.recent_builds(limit=RECENT_BUILDS),
        "projects": project_rows(
            Project.objects.listed().order_by("-id")[:RECENT_PROJECTS], with_chroots=False
        ),
    }
    return render(request, "site/home.html", context)


@require_safe
def search(request):
    """Projects by owner, name, description or package; a build id jumps to that build."""
    query = request.GET.get("q", "").strip()
    if query.isdigit() and Build.objects.filter(pk=int(query)).exists():
        return redirect("build-detail", int(query))
    projects = Project.objects.none()
    if query:
        projects = Project.objects.listed().filter(search_filter(query)).order_by("-id")
    page = projects_page(request, projects, SEARCH_RESULTS_PER_PAGE, paginator=CappedPaginator)
    context = {"query": query, "page": page, "query_string": urlencode({"q": query})}
    return render(request, "site/search.html", context)


def search_filter(query: str) -> Q:
    """`owner/project` narrows to that owner; otherwise the query may be part of a project's
    name, its description or one of its packages' names, or be its owner's name.

    Each alternative is a condition on the project row that an index answers (trigram
    indexes on PostgreSQL, see the projects migration `search_trigram_indexes`): the owners
    and the projects with a matching package are looked up first, so the final query is
    an OR of index scans instead of a scan of every project joined with its owner.
    """
    if "/" in query:
        owner, _, name = query.partition("/")
        by_owner = (
            Q(owner_group__name__iexact=owner[1:])
            if owner.startswith("@")
            else Q(owner_user__username__iexact=owner)
        )
        return by_owner & Q(name__icontains=name)
    users = User.objects.filter(username__iexact=query).values_list("pk", flat=True)
    groups = Group.objects.filter(name__iexact=query.lstrip("@")).values_list("pk", flat=True)
    # The projects of matching packages go to the database as one array: as a subquery,
    # the packages would be searched again for the count and again for the page.
    with_package = list(
        Package.objects.filter(name__icontains=query)
        .order_by()
        .values_list("project_id", flat=True)
        .distinct()
    )
    return (
        Q(name__icontains=query)
        | Q(description__icontains=query)
        | Q(owner_user__in=list(users))
        | Q(owner_group__in=list(groups))
        | Q(pk__in_array=with_package)
    )


@require_safe
def status(request):
    """The queue per arch and chroot, and the builds of the last days as a chart."""
    days = selectors.builds_per_day(days=CHART_DAYS)
    context = {
        "queue": selectors.queue_summary(),
        "chart": builds_chart(days),
        "days": days,
        "chart_days": CHART_DAYS,
    }
    return render(request, "site/status.html", context)


@require_safe
def user_detail(request, username: str):
    """A user's projects, @groups and newest builds; their own page links the API token."""
    person = get_object_or_404(User, username=username, is_active=True)
    context = {
        "person": person,
        # Copr's big owners have hundreds of projects: a page of them, like the owner's list.
        "page": projects_page(
            request, Project.objects.by_ownername(person.username).order_by("name")
        ),
        "groups": person.owner_groups.order_by("name"),
        "builds": selectors.build_rows(
            selectors.builds_for_list().filter(submitter=person)[:RECENT_BUILDS]
        ),
        "is_self": request.user.pk == person.pk,
    }
    return render(request, "site/user.html", context)
