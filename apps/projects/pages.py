"""What the project, build and package pages share: the project or a 404, what the user may
do there, paging, and a service's error on a form."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.utils.functional import cached_property

from apps.core.errors import InvalidForm, ServiceError
from apps.projects import permissions
from apps.projects.models import Project
from apps.projects.selectors import project_rows

PROJECTS_PER_PAGE = 30


def projects_for_list():
    """Projects with their owner and enabled chroots, ready for a list page."""
    return Project.objects.with_owner().with_chroot_names()


def project_or_404(owner: str, name: str) -> Project:
    project = Project.objects.with_owner().by_ownername(owner).filter(name=name).first()
    if project is None:
        raise Http404(f"Project {owner}/{name} does not exist.")
    return project


def abilities(user, project: Project) -> dict:
    """What `user` may do here; templates show buttons only for these."""
    can_edit = permissions.can_edit(user, project)
    return {
        "can_edit": can_edit,
        "can_build": can_edit or permissions.can_build_in(user, project),
        # Any logged-in user may fork into their own namespace.
        "can_fork": bool(user and user.is_authenticated),
    }


def require(allowed: bool, message: str) -> None:
    """Turn a failed permission rule into a 403 page (the login redirect comes earlier)."""
    if not allowed:
        raise DjangoPermissionDenied(message)


def page_of(request, items, per_page: int, *, paginator=Paginator):
    return paginator(items, per_page).get_page(request.GET.get("page"))


class CappedPaginator(Paginator):
    """Pages through the first `CAP` rows only, counting no further than that.

    A broad search matches a third of all projects; counting them all reads the whole
    table, and nobody pages past the first thousand: the page says there are more.
    """

    CAP = 1000

    @cached_property
    def counted(self) -> int:
        return self.object_list[: self.CAP + 1].count()

    @cached_property
    def count(self) -> int:
        return min(self.counted, self.CAP)

    @property
    def more(self) -> bool:
        return self.counted > self.CAP


class LookaheadPaginator(Paginator):
    """Counts the rows only as far as `PAGES_AHEAD` pages past the one asked for.

    A project with 300,000 builds would otherwise count them all on every page it shows
    (three times the time of its page); nobody pages ten pages ahead of where they are.
    Past that, the page links say there are more and go one page further each time.
    One query reads the rows from the asked page's first to that limit: their number is
    the count and the first of them the page (a count, then the page with its own
    offset, walked the same index twice).
    """

    PAGES_AHEAD = 10

    def __init__(self, object_list, per_page, *, asked):
        super().__init__(object_list, per_page)
        self.asked = page_number(asked)
        self.offset = (self.asked - 1) * self.per_page
        self.limit = (self.asked + self.PAGES_AHEAD) * self.per_page

    @cached_property
    def ahead(self) -> list:
        return list(self.object_list[self.offset : self.limit + 1])

    @cached_property
    def counted(self) -> int:
        if self.ahead or not self.offset:
            return self.offset + len(self.ahead)
        # Asked past the last page: count what there is, to show the last page instead.
        return self.object_list[: self.limit + 1].count()

    @cached_property
    def count(self) -> int:
        return min(self.counted, self.limit)

    @property
    def open_ended(self) -> bool:
        return self.counted > self.limit

    def page(self, number):
        number = self.validate_number(number)
        if number == self.asked:
            return self._get_page(self.ahead[: self.per_page], number, self)
        return super().page(number)


def page_number(asked) -> int:
    """The page asked for, as `Paginator.get_page` reads it (the first for anything else)."""
    try:
        return max(1, int(asked))
    except (TypeError, ValueError):
        return 1


def projects_page(request, projects, per_page: int = PROJECTS_PER_PAGE, *, paginator=Paginator):
    """A page of the projects table, its rows read as plain values (`project_rows`)."""
    page = page_of(request, projects, per_page, paginator=paginator)
    page.object_list = project_rows(page.object_list)
    return page


def page_by_ids(request, rows, per_page: int, *, read=list):
    """A page of `rows` whose ids are found first, then read (by `read`) with their joins.

    The ids of a page come from an index alone ((project, -id) for a project's builds);
    asked for whole joined rows, PostgreSQL may instead walk the primary key backwards
    through every newer build of other projects to reach an old project's page. `rows`
    is ordered, so the rows read keep the page's order. The rows are counted only a few
    pages ahead (`LookaheadPaginator`).
    """
    asked = request.GET.get("page")
    ids = rows.values_list("pk", flat=True)
    page = LookaheadPaginator(ids, per_page, asked=asked).get_page(asked)
    ids = list(page.object_list)
    page.object_list = read(rows.filter(pk__in_array=ids)) if ids else []
    return page


def service_error(form, error: ServiceError) -> int:
    """Show the service's message on the form (beside each field it names, when the form
    has that field); returns the status for the re-rendered page."""
    if not isinstance(error, InvalidForm):
        form.add_error(None, error.message)
        return error.status
    for field, problems in error.errors.items():
        if field in form.fields:
            form.add_error(field, problems)
        else:
            form.add_error(None, [f"{field}: {problem}" for problem in problems])
    return error.status
