"""/api_3/project/*: get, list, search, add, edit, fork, delete, regenerate-repos, permissions."""

from django.db import transaction
from django.db.models import Q
from django.http import JsonResponse

from apps.accounts.models import User
from apps.api.v3 import forms, shapes
from apps.api.v3.base import CoprView, as_bool, listed, paginated
from apps.api.v3.lookups import project_or_404
from apps.core.errors import Conflict, FieldErrors, NotFound, PermissionDenied, ServiceError
from apps.core.names import as_list, project_name_errors
from apps.projects.models import Project
from apps.projects.permissions import can_build_in, can_edit
from apps.projects.services import permission_request, permission_set
from apps.workflows.projects import (
    project_create,
    project_delete,
    project_edit,
    project_fork,
    project_regenerate_repos,
)

PROJECT_ORDERS = {"id": "id", "name": "name", "ownername": "owner_user__username"}


def projects_queryset():
    return Project.objects.with_owner().with_chroot_names()


def rendered_project(project: Project) -> JsonResponse:
    return JsonResponse(shapes.project_shape(projects_queryset().get(pk=project.pk)))


class ProjectGet(CoprView):
    def get(self, request, **kwargs):
        project = project_or_404(self.param("ownername"), self.param("projectname"))
        return rendered_project(project)


class ProjectList(CoprView):
    """Every project of an owner (unlisted ones too), or every project."""

    def get(self, request, **kwargs):
        projects = Project.objects.with_owner()
        ownername = self.param("ownername")
        if ownername:
            projects = projects.by_ownername(ownername)
        return listed(self, projects, shapes.project_shapes, orders=PROJECT_ORDERS)


class ProjectSearch(CoprView):
    """Projects whose name, owner or description contain the query (listed ones only)."""

    def get(self, request, **kwargs):
        query = self.param("query", required=True).strip()
        owner, _, name = query.rpartition("/")
        if owner:
            matches = Q(name__icontains=name) & (
                Q(owner_user__username__iexact=owner.lstrip("@"))
                | Q(owner_group__name__iexact=owner.lstrip("@"))
            )
        else:
            matches = (
                Q(name__icontains=query)
                | Q(description__icontains=query)
                | Q(owner_user__username__icontains=query)
                | Q(owner_group__name__icontains=query)
            )
        projects = projects_queryset().listed().filter(matches)
        return JsonResponse(paginated(self, projects, shapes.project_shape, orders=PROJECT_ORDERS))


class ProjectAdd(CoprView):
    def post(self, request, **kwargs):
        user = self.authenticated_user()
        ownername = self.param("ownername", required=True)
        errors = FieldErrors()
        name = self.data.get("name")
        if name is None or name == "":
            errors.add("name", "This field is required.")
        elif as_bool(request.GET.get("exist_ok"), name="exist_ok") and isinstance(name, str):
            existing = Project.objects.by_ownername(ownername).filter(name=name).first()
            if existing:
                return rendered_project(existing)
        chroots = errors.check("chroots", as_list, self.data.get("chroots"), "chroots") or []
        settings = forms.project_settings(self.data, errors)
        if settings.get("persistent") is False:
            settings.pop("persistent")  # the default; only turning it on is for staff
        try:
            project = project_create(
                user=user,
                ownername=ownername,
                name=name,
                chroot_names=chroots,
                errors=errors,
                **settings,
            )
        except Conflict as error:
            raise ServiceError(error.message) from error
        return rendered_project(project)


class ProjectEdit(CoprView):
    def post(self, request, **kwargs):
        user = self.authenticated_user()
        project = project_or_404(self.param("ownername"), self.param("projectname"))
        errors = FieldErrors()
        settings = forms.project_settings(self.data, errors)
        settings.pop("persistent", None)  # not editable through the API, as in Copr
        chroots = errors.check("chroots", as_list, self.data.get("chroots"), "chroots") or None
        project_edit(user=user, project=project, chroot_names=chroots, errors=errors, **settings)
        return rendered_project(project)

    put = post


class ProjectFork(CoprView):
    def post(self, request, **kwargs):
        user = self.authenticated_user()
        project = project_or_404(self.param("ownername"), self.param("projectname"))
        errors = FieldErrors()
        name = self.data.get("name")
        if name is None or name == "":
            errors.add("name", "The name of the fork is required.")
        else:
            errors.add("name", *project_name_errors(name))
        ownername = self.data.get("ownername") or user.username
        if not isinstance(ownername, str):
            errors.add("ownername", "Expected text, the name of a user or @group.")
        confirm = errors.check("confirm", as_bool, self.data.get("confirm"), name="confirm")
        errors.raise_if_any()
        fork, _ = project_fork(
            user=user, project=project, ownername=ownername, name=name, confirm=bool(confirm)
        )
        return rendered_project(fork)

    put = post


class ProjectDelete(CoprView):
    def post(self, request, **kwargs):
        user = self.authenticated_user()
        project = project_or_404(self.param("ownername"), self.param("projectname"))
        if not as_bool(self.data.get("verify"), name="verify"):
            raise ServiceError('verify: Confirm the deletion with "verify": true.')
        rendered = shapes.project_shape(projects_queryset().get(pk=project.pk))
        project_delete(user=user, project=project)
        return JsonResponse(rendered)

    delete = post


class ProjectRegenerateRepos(CoprView):
    def post(self, request, **kwargs):
        user = self.authenticated_user()
        project = project_or_404(self.param("ownername"), self.param("projectname"))
        project_regenerate_repos(user=user, project=project)
        return rendered_project(project)

    put = post


# --- permissions --------------------------------------------------------------------------


class PermissionsCanBuildIn(CoprView):
    def get(self, request, **kwargs):
        project = project_or_404(self.param("ownername"), self.param("projectname"))
        who = User.objects.filter(username=kwargs["who"]).first()
        if who is None:
            raise NotFound(f"User {kwargs['who']} does not exist.")
        return JsonResponse(
            {
                "who": who.username,
                "ownername": project.ownername,
                "projectname": project.name,
                "can_build_in": can_build_in(who, project),
            }
        )


class PermissionsGet(CoprView):
    def get(self, request, **kwargs):
        user = self.authenticated_user()
        project = project_or_404(self.param("ownername"), self.param("projectname"))
        if not can_edit(user, project):
            raise PermissionDenied(
                f"You are not allowed to see the permissions of {project.full_name}."
            )
        permissions = list(project.permissions.select_related("user").order_by("user__username"))
        if not permissions:
            raise NotFound(f"No permissions set on {project.ownername}/{project.name} project")
        return JsonResponse(shapes.permissions_shape(permissions))


class PermissionsSet(CoprView):
    """`{"bob": {"builder": "approved", "admin": "nothing"}}`; all or nothing."""

    body_has_name_fields = False  # its keys are user names

    def post(self, request, **kwargs):
        user = self.authenticated_user()
        project = project_or_404(self.param("ownername"), self.param("projectname"))
        changes = dict(self.data)
        targets = permission_targets(changes)
        with transaction.atomic():
            for name, roles in changes.items():
                permission_set(
                    user=user,
                    project=project,
                    target=targets[name],
                    builder=roles.get("builder"),
                    admin=roles.get("admin"),
                )
        return JsonResponse({"updated": sorted(changes)})

    put = post


def permission_targets(changes: dict) -> dict[str, User]:
    if not changes:
        raise ServiceError("Name at least one user and the permissions to give them.")
    for name, roles in changes.items():
        if not isinstance(roles, dict) or not set(roles) <= {"builder", "admin"}:
            raise ServiceError(
                f"Permissions of {name} must look like "
                '{"builder": "approved", "admin": "nothing"}.'
            )
    users = {u.username: u for u in User.objects.filter(username__in=list(changes))}
    missing = sorted(set(changes) - set(users))
    if missing:
        raise ServiceError(f"User(s) {', '.join(missing)} do not exist.")
    return users


class PermissionsRequest(CoprView):
    """`{"builder": true, "admin": false}`: true asks, false gives up or cancels."""

    def post(self, request, **kwargs):
        user = self.authenticated_user()
        project = project_or_404(self.param("ownername"), self.param("projectname"))
        roles = {
            role: as_bool(self.data[role], name=role)
            for role in ("builder", "admin")
            if role in self.data
        }
        updated = permission_request(user=user, project=project, **roles)
        return JsonResponse({"updated": updated})

    put = post
