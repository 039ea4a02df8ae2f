"""Native API views: HTTP shapes over the services; every write is one service call."""

import json
from collections.abc import Mapping

from django.db import connection
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated, IsAuthenticatedOrReadOnly
from rest_framework.response import Response

from apps.api.v1 import queries
from apps.api.v1.errors import api_exception_handler
from apps.api.v1.parsers import BoundedJSONParser
from apps.api.v1.serializers import (
    BuildCreateInput,
    BuildResubmitInput,
    BuildSerializer,
    BuildStateInput,
    ProjectChrootSerializer,
    ProjectCreateInput,
    ProjectEditInput,
    ProjectSerializer,
    SshAccessSerializer,
    TaskSerializer,
)
from apps.builds.services import build_cancel, build_delete, build_resubmit, build_submit
from apps.builds.ssh_access import build_ssh_release, can_use_ssh_access, ssh_access_state
from apps.core.errors import InvalidForm, NotFound, PermissionDenied
from apps.core.names import MAX_BIGINT, name_type_errors
from apps.workflows.projects import project_create, project_delete, project_edit

ERROR = inline_serializer("Error", {"error": serializers.CharField()})
# What a write may answer besides success; 400s add "fields" for invalid input.
WRITE_ERRORS = {code: ERROR for code in (400, 401, 403, 404, 409)}
OWNER_FILTER = OpenApiParameter(
    "owner", OpenApiTypes.STR, description="Only projects of this owner (`alice` or `@group`)."
)


class Pagination(LimitOffsetPagination):
    """Limit/offset pages whose `count` is exact only up to some rows past the page.

    `COUNT(*)` over every build reads the whole table on each page, and over a project's
    every build the whole project (300,000 builds: twice the time of the page itself). An
    unfiltered big table's count is the planner's row estimate (kept by autovacuum); a
    filtered list is counted as far as `exact_rows_ahead` rows past the page, and beyond
    that its count is the planner's estimate for the filter: close enough for a total.
    """

    max_limit = 1000
    exact_count_below = 10000
    exact_rows_ahead = 1000

    def paginate_queryset(self, queryset, request, view=None):
        """The page's ids first, from an index alone, then their rows with their joins.

        One query reads the page's ids and up to `exact_rows_ahead` more: when it reaches
        the end, the count is exact with no `COUNT` at all. Asked for whole joined rows,
        PostgreSQL may walk the primary key backwards through every newer build of other
        projects to reach an old project's hundred builds.
        """
        self.request = request
        self.limit = self.get_limit(request)
        if self.limit is None:
            return None
        self.offset = self.get_offset(request)
        estimate = estimated_rows(queryset)
        if estimate is not None and estimate >= self.exact_count_below:
            # A big unfiltered table: the planner's count, and only the page read.
            ids = list(
                queryset.values_list("pk", flat=True)[self.offset : self.offset + self.limit]
            )
            self.count = estimate
        else:
            window = self.offset + self.limit + self.exact_rows_ahead
            ids = list(queryset.values_list("pk", flat=True)[self.offset : window + 1])
            self.count = self.counted(queryset, len(ids), window)
        if self.count > self.limit and self.template is not None:
            self.display_page_controls = True
        ids = ids[: self.limit]
        if not ids:
            return ids
        rows = {row.pk: row for row in queryset.filter(pk__in_array=ids)}
        return [rows[pk] for pk in ids if pk in rows]

    def counted(self, queryset, read: int, window: int) -> int:
        """The total for a page that read `read` ids from the offset up to `window`."""
        if read and self.offset + read <= window:
            return self.offset + read  # the end is on this page or within the rows ahead
        if not read:  # nothing, or an offset past the end: counted as far as the offset
            return queryset.order_by()[: self.offset].count() if self.offset else 0
        return max(planned_rows(queryset) or 0, self.offset + read)

    def get_offset(self, request) -> int:
        # DRF takes any size; past bigint the database would fail with a 500.
        offset = super().get_offset(request)
        if offset > MAX_BIGINT:
            raise ValidationError({"offset": [f"Ensure this value is at most {MAX_BIGINT}."]})
        return offset


def estimated_rows(queryset) -> int | None:
    """The planner's row count of an unfiltered queryset's table, on PostgreSQL."""
    if queryset.query.where or connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
            [queryset.model._meta.db_table],
        )
        row = cursor.fetchone()
    return row[0] if row and row[0] > 0 else None


def planned_rows(queryset) -> int | None:
    """The planner's estimate of the rows a filtered queryset finds, on PostgreSQL."""
    if connection.vendor != "postgresql":
        return None
    sql, params = queryset.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):  # a driver that leaves json as text
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


class ApiView(generics.GenericAPIView):
    """Base of every v1 view: anonymous may read, JSON in, one error shape out."""

    permission_classes = [IsAuthenticatedOrReadOnly]
    parser_classes = [BoundedJSONParser]
    pagination_class = Pagination

    def get_exception_handler(self):
        return api_exception_handler

    def valid_input(self, serializer_class, **kwargs) -> serializers.Serializer:
        # A serializer's CharField would take the number -1 as the name "-1".
        if isinstance(self.request.data, Mapping) and (
            errors := name_type_errors(self.request.data)
        ):
            raise InvalidForm(errors)
        serializer = serializer_class(
            data=self.request.data, context=self.get_serializer_context(), **kwargs
        )
        serializer.is_valid(raise_exception=True)
        return serializer

    def rendered(self, serializer_class, instance) -> dict:
        return serializer_class(instance, context=self.get_serializer_context()).data

    def created(self, serializer_class, instance) -> Response:
        data = self.rendered(serializer_class, instance)
        return Response(
            data, status=status.HTTP_201_CREATED, headers={"Location": data["links"]["self"]}
        )


class AuthCheck(ApiView):
    """Who the credentials belong to."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses=inline_serializer(
            "AuthCheck", {"id": serializers.IntegerField(), "name": serializers.CharField()}
        )
    )
    def get(self, request):
        return Response({"id": request.user.pk, "name": request.user.username})


# --- projects -----------------------------------------------------------------------------


class ProjectList(ApiView, generics.ListAPIView):
    serializer_class = ProjectSerializer

    def get_queryset(self):
        owner = self.request.query_params.get("owner")
        projects = queries.projects()
        return projects.by_ownername(owner) if owner else projects

    def paginate_queryset(self, queryset):
        return queries.with_chroot_names(super().paginate_queryset(queryset))

    @extend_schema(parameters=[OWNER_FILTER])
    def get(self, request):
        return self.list(request)

    @extend_schema(request=ProjectCreateInput, responses={201: ProjectSerializer, **WRITE_ERRORS})
    def post(self, request):
        data = self.valid_input(ProjectCreateInput).validated_data
        project = project_create(user=request.user, **{"ownername": request.user.username, **data})
        return self.created(ProjectSerializer, queries.project_shaped(project.pk))


class ProjectDetail(ApiView):
    serializer_class = ProjectSerializer

    def get(self, request, owner, name):
        project = queries.with_chroot_names([queries.project_or_404(owner, name)])[0]
        return Response(self.rendered(ProjectSerializer, project))

    @extend_schema(request=ProjectEditInput, responses={200: ProjectSerializer, **WRITE_ERRORS})
    def patch(self, request, owner, name):
        project = queries.project_or_404(owner, name)
        data = self.valid_input(ProjectEditInput, partial=True).validated_data
        project_edit(user=request.user, project=project, **data)
        return Response(self.rendered(ProjectSerializer, queries.project_shaped(project.pk)))

    @extend_schema(responses={204: None, **WRITE_ERRORS})
    def delete(self, request, owner, name):
        project_delete(user=request.user, project=queries.project_or_404(owner, name))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProjectChrootList(ApiView, generics.ListAPIView):
    """The chroots enabled in a project, with their per-chroot settings."""

    serializer_class = ProjectChrootSerializer
    pagination_class = None

    def get_queryset(self):
        project = queries.project_or_404(self.kwargs["owner"], self.kwargs["name"])
        return project.project_chroots.select_related("chroot")


# --- builds -------------------------------------------------------------------------------


class BuildList(ApiView, generics.ListAPIView):
    """Every build, newest first."""

    serializer_class = BuildSerializer

    def get_queryset(self):
        return queries.listed_builds()


class ProjectBuildList(ApiView, generics.ListAPIView):
    """A project's builds, newest first; POST submits an SRPM by URL or upload."""

    serializer_class = BuildSerializer
    parser_classes = [BoundedJSONParser, MultiPartParser, FormParser]

    def get_queryset(self):
        project = queries.project_or_404(self.kwargs["owner"], self.kwargs["name"])
        return queries.listed_builds().filter(project=project)

    @extend_schema(
        request={
            "application/json": BuildCreateInput,
            "multipart/form-data": BuildCreateInput,
        },
        responses={201: BuildSerializer, **WRITE_ERRORS},
    )
    def post(self, request, owner, name):
        project = queries.project_or_404(owner, name)
        source = self.valid_input(BuildCreateInput).build_submit_arguments()
        try:
            build = build_submit(user=request.user, project=project, **source)
        except InvalidForm as error:
            # The service names the source as Copr's form does (`pkgs`); here it has a name.
            own_name = "srpm" if source["source_type"] == "upload" else "source_url"
            errors = {own_name if f == "pkgs" else f: m for f, m in error.errors.items()}
            raise InvalidForm(errors) from error
        return self.created(BuildSerializer, queries.build_or_404(build.pk))


class BuildDetail(ApiView):
    serializer_class = BuildSerializer

    def get(self, request, build_id):
        return Response(self.rendered(BuildSerializer, queries.build_or_404(build_id)))

    @extend_schema(request=BuildStateInput, responses={200: BuildSerializer, **WRITE_ERRORS})
    def patch(self, request, build_id):
        build = queries.build_or_404(build_id)
        self.valid_input(BuildStateInput)
        build_cancel(user=request.user, build=build)
        return Response(self.rendered(BuildSerializer, queries.build_or_404(build_id)))

    @extend_schema(responses={204: None, **WRITE_ERRORS})
    def delete(self, request, build_id):
        build_delete(user=request.user, build=queries.build_or_404(build_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class BuildResubmit(ApiView):
    """Copr's resubmit: the build's source again; with `ssh_public_keys`, with SSH access
    for debugging (one chroot; the machine is kept `ssh_hours` after the build)."""

    serializer_class = BuildSerializer

    @extend_schema(request=BuildResubmitInput, responses={201: BuildSerializer, **WRITE_ERRORS})
    def post(self, request, build_id):
        build = queries.build_or_404(build_id)
        options = self.valid_input(BuildResubmitInput).options()
        resubmitted = build_resubmit(user=request.user, build=build, options=options)
        return self.created(BuildSerializer, queries.build_or_404(resubmitted.pk))


class BuildSshAccess(ApiView):
    """A build's SSH access, for its submitter (and staff): the ssh command once the
    machine is kept; DELETE destroys the machine now."""

    permission_classes = [IsAuthenticated]
    serializer_class = SshAccessSerializer

    def ssh_build(self, build_id):
        build = queries.build_or_404(build_id)
        if not can_use_ssh_access(self.request.user, build):
            raise PermissionDenied(f"Only the submitter of build {build.pk} sees its SSH access.")
        if not build.with_ssh_access:
            raise NotFound(f"Build {build.pk} was not submitted with SSH access.")
        return build

    @extend_schema(responses={200: SshAccessSerializer, **WRITE_ERRORS})
    def get(self, request, build_id):
        state = ssh_access_state(self.ssh_build(build_id))
        return Response(SshAccessSerializer(state).data)

    @extend_schema(responses={204: None, **WRITE_ERRORS})
    def delete(self, request, build_id):
        build_ssh_release(user=request.user, build=self.ssh_build(build_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- tasks --------------------------------------------------------------------------------


class BuildTaskList(ApiView, generics.ListAPIView):
    """A build's source task and chroot tasks."""

    serializer_class = TaskSerializer
    pagination_class = None

    def get_queryset(self):
        build = queries.build_or_404(self.kwargs["build_id"])
        return queries.tasks().filter(build=build)


class TaskDetail(ApiView):
    serializer_class = TaskSerializer

    def get(self, request, task_id):
        return Response(self.rendered(TaskSerializer, queries.task_or_404(task_id)))


# --- anything else ------------------------------------------------------------------------


@extend_schema(exclude=True)
class UnknownEndpoint(ApiView):
    """A JSON 404 for paths under /api/v1/ that name no endpoint (e.g. /builds/abc)."""

    permission_classes = [AllowAny]

    def get(self, request, path=""):
        raise NotFound(
            f"There is no API endpoint at {request.path}; the API is described at "
            f"{request.build_absolute_uri(reverse('v1-docs'))}."
        )

    post = put = patch = delete = options = get
