"""Project pages: lists per owner, the overview, settings with per-chroot settings,
permissions, fork and integrations (webhook URLs)."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.functional import cached_property
from django.views.decorators.http import require_http_methods, require_safe

from apps.accounts.models import Group, User
from apps.core.errors import InvalidForm, ServiceError
from apps.projects import permissions
from apps.projects.forms import (
    PermissionDecisionForm,
    PermissionGrantForm,
    PermissionRequestForm,
    ProjectChrootForm,
    ProjectCreateForm,
    ProjectForkForm,
    ProjectSettingsForm,
)
from apps.projects.hub import enable_command, hub_config_path
from apps.projects.models import PermissionLevel, Project, ProjectChroot, ProjectPermission
from apps.projects.repofile import repo_chroots
from apps.projects.selectors import project_rows
from apps.projects.services import (
    permission_request,
    permission_set,
    project_chroot_edit,
    project_create,
    project_delete,
    project_edit,
    project_fork,
    project_webhook_secret_regenerate,
)

PROJECTS_PER_PAGE = 30


# --- shared by the project, build and package pages ---------------------------------------


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
    is ordered, so the rows read keep the page's order.
    """
    page = page_of(request, rows.values_list("pk", flat=True), per_page)
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


# --- lists ---------------------------------------------------------------------------------


@require_safe
def project_list(request):
    page = projects_page(request, Project.objects.listed().order_by("-id"))
    return render(request, "projects/list.html", {"page": page, "title": "Projects"})


@require_safe
def owner_projects(request, owner: str):
    """All projects of a user or an @group (unlisted ones too: the owner's page lists all)."""
    group = user = None
    if owner.startswith("@"):
        group = get_object_or_404(Group, name=owner[1:])
    else:
        user = get_object_or_404(User, username=owner)
    page = projects_page(request, Project.objects.by_ownername(owner).order_by("name"))
    can_create = permissions.can_own_as(request.user, owner)
    context = {"page": page, "title": f"Projects of {owner}", "owner": owner, "group": group}
    context.update({"owner_user": user, "can_create": can_create})
    return render(request, "projects/list.html", context)


# --- one project ---------------------------------------------------------------------------


@require_safe
def project_detail(request, owner: str, project: str):
    found = project_or_404(owner, project)
    chroots = list(repo_chroots(found))
    context = {
        "project": found,
        "chroots": chroots,
        "repo_links": repo_links(found, chroots),
        "hub_config_url": settings.PUBLIC_URL + reverse("hub-config"),
        "hub_config_path": hub_config_path(),
        "enable_command": enable_command(found.full_name),
        "fork_copying": found.forked_from_id is not None and fork_copying(found),
        **abilities(request.user, found),
    }
    return render(request, "projects/detail.html", context)


def fork_copying(project: Project) -> int:
    """Forked builds whose RPMs the sign queue is still copying and re-signing."""
    from apps.builds.models import Build, State

    return Build.objects.filter(project=project, state=State.FORKED, ended_on__isnull=True).count()


def repo_links(project: Project, chroots) -> list[dict]:
    """One `.repo` link per distribution release (`fedora-43`), with the arches it covers."""
    releases: dict[str, list[str]] = {}
    for chroot in chroots:
        releases.setdefault(chroot.name_release, []).append(chroot.arch)
    if project.owner_group_id:
        url_name, owner = "group-repo-file", project.owner_group.name
    else:
        url_name, owner = "repo-file", project.owner_user.username
    prefix = project.ownername.replace("@", "group_")
    return [
        {
            "name_release": name_release,
            "arches": arches,
            "url": reverse(url_name, args=[owner, project.name, name_release])
            + f"{prefix}-{project.name}-{name_release}.repo",
        }
        for name_release, arches in releases.items()
    ]


def owner_choices(user) -> list[str]:
    """Who a new project can belong to: the user, then their @groups."""
    groups = user.owner_groups.order_by("name").values_list("name", flat=True)
    return [user.username, *(f"@{name}" for name in groups)]


@login_required
@require_http_methods(["GET", "POST"])
def project_new(request):
    choices = owner_choices(request.user)
    wanted_owner = request.GET.get("owner")
    initial = {"owner": wanted_owner if wanted_owner in choices else choices[0]}
    form = ProjectCreateForm(request.POST or None, owner_choices=choices, initial=initial)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.service_fields()
            try:
                created = project_create(
                    user=request.user,
                    ownername=form.cleaned_data["owner"],
                    name=form.cleaned_data["name"],
                    **data,
                )
            except ServiceError as error:
                status = service_error(form, error)
            else:
                messages.success(request, creation_summary(created))
                return redirect("project-detail", created.ownername, created.name)
    return render(request, "projects/new.html", {"form": form}, status=status)


def creation_summary(project: Project) -> str:
    count = project.project_chroots.count()
    return (
        f"Project {project.full_name} created with {count} chroot{'s' if count != 1 else ''}. "
        "Add a package or start a build."
    )


@login_required
@require_http_methods(["GET", "POST"])
def project_settings(request, owner: str, project: str):
    found = project_or_404(owner, project)
    require(permissions.can_edit(request.user, found), f"You cannot edit {found.full_name}.")
    chroots = ProjectChroot.objects.select_related("chroot")
    found = (
        Project.objects.with_owner()
        .prefetch_related(Prefetch("project_chroots", queryset=chroots))
        .get(pk=found.pk)
    )
    form = ProjectSettingsForm(request.POST or None, initial=ProjectSettingsForm.initial_for(found))
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                project_edit(user=request.user, project=found, **form.service_fields())
            except ServiceError as error:
                status = service_error(form, error)
            else:
                return redirect("project-detail", found.ownername, found.name)
    context = {
        "project": found,
        "form": form,
        "chroot_forms": chroot_forms(found),
        **abilities(request.user, found),
    }
    return render(request, "projects/settings.html", context, status=status)


def chroot_forms(project: Project) -> list[tuple[ProjectChroot, ProjectChrootForm]]:
    """A settings form for each enabled chroot (prefetched by projects_for_list)."""
    return [
        (pc, ProjectChrootForm(prefix=pc.chroot.name, initial=ProjectChrootForm.initial_for(pc)))
        for pc in project.project_chroots.all()
    ]


@login_required
@require_http_methods(["GET", "POST"])
def project_chroot_settings(request, owner: str, project: str, chroot: str):
    """One chroot's build settings; the settings page posts here, errors show on this page."""
    found = project_or_404(owner, project)
    require(permissions.can_edit(request.user, found), f"You cannot edit {found.full_name}.")
    project_chroot = (
        ProjectChroot.objects.select_related("chroot")
        .filter(project=found, chroot__name=chroot)
        .first()
    )
    if project_chroot is None:
        raise Http404(f"{chroot} is not enabled in {found.full_name}.")
    form = ProjectChrootForm(
        request.POST or None,
        request.FILES or None,
        prefix=chroot,
        initial=ProjectChrootForm.initial_for(project_chroot),
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                project_chroot_edit(
                    user=request.user, project_chroot=project_chroot, **form.service_fields()
                )
            except ServiceError as error:
                status = service_error(form, error)
            else:
                messages.success(request, f"Settings of {chroot} saved.")
                settings_url = reverse("project-settings", args=[found.ownername, found.name])
                return redirect(f"{settings_url}#chroots")
    context = {
        "project": found,
        "project_chroot": project_chroot,
        "form": form,
        **abilities(request.user, found),
    }
    return render(request, "projects/chroot.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def project_remove(request, owner: str, project: str):
    """A confirmation page; POST deletes the project with its builds and repositories."""
    found = project_or_404(owner, project)
    require(permissions.can_admin(request.user, found), f"You cannot delete {found.full_name}.")
    error, status = None, 200
    if request.method == "POST":
        try:
            project_delete(user=request.user, project=found)
        except ServiceError as failure:
            error, status = failure.message, failure.status
        else:
            return redirect("owner-projects", found.ownername)
    context = {"project": found, "error": error, **abilities(request.user, found)}
    return render(request, "projects/delete.html", context, status=status)


# --- fork and integrations ------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def project_fork_view(request, owner: str, project: str):
    """Fork into the user's namespace or one of their @groups; the fork's page shows the result."""
    found = project_or_404(owner, project)
    form = ProjectForkForm(
        request.POST or None,
        owner_choices=owner_choices(request.user),
        initial={"owner": request.user.username, "name": found.name},
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                fork, created = project_fork(
                    user=request.user,
                    project=found,
                    ownername=form.cleaned_data["owner"],
                    name=form.cleaned_data["name"],
                    confirm=form.cleaned_data["confirm"],
                )
            except ServiceError as error:
                status = service_error(form, error)
            else:
                messages.success(request, fork_summary(found, fork, created))
                return redirect("project-detail", fork.ownername, fork.name)
    context = {"project": found, "form": form, **abilities(request.user, found)}
    return render(request, "projects/fork.html", context, status=status)


def fork_summary(original: Project, fork: Project, created: bool) -> str:
    packages, builds = fork.packages.count(), fork.builds.count()
    verb = "Forked" if created else "Forked again"
    copying = fork_copying(fork)
    return (
        f"{verb} {original.full_name} into {fork.full_name}: "
        f"{packages} package(s), {builds} build(s)."
        + (
            f" The RPMs of {copying} build(s) are being copied and signed with the fork's key;"
            " they appear in its repositories within a few minutes."
            if copying
            else ""
        )
    )


@login_required
@require_http_methods(["GET", "POST"])
def project_integrations(request, owner: str, project: str):
    """The webhook URLs with the project's secret; POST makes a new secret."""
    found = project_or_404(owner, project)
    require(
        permissions.can_edit(request.user, found),
        f"You cannot see the integrations of {found.full_name}.",
    )
    if request.method == "POST":
        project_webhook_secret_regenerate(user=request.user, project=found)
        messages.success(request, "A new webhook secret was made; update your forges' webhooks.")
        return redirect("project-integrations", found.ownername, found.name)
    context = {
        "project": found,
        "webhooks": webhook_urls(request, found),
        "custom_url": webhook_url(request, "custom", found, package_name="PACKAGE_NAME"),
        **abilities(request.user, found),
    }
    return render(request, "projects/integrations.html", context)


def webhook_urls(request, project: Project) -> list[tuple[str, str]]:
    """(forge, URL) for every forge webhook; the secret is part of the URL, as in Copr."""
    forges = (("github", "GitHub"), ("gitlab", "GitLab"), ("bitbucket", "Bitbucket"))
    forges += (("pagure", "Pagure"),)
    return [(title, webhook_url(request, name, project)) for name, title in forges]


def webhook_url(request, name: str, project: Project, **kwargs) -> str:
    # The routes take the trailing slash as optional; Copr shows its URLs with one.
    kwargs.update(copr_id=project.pk, uuid=project.webhook_secret)
    return request.build_absolute_uri(reverse(f"webhooks:{name}", kwargs=kwargs)) + "/"


# --- permissions ---------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def project_permissions(request, owner: str, project: str):
    """Everyone sees who holds which right; users ask for rights, project admins decide."""
    found = project_or_404(owner, project)
    if request.method == "POST" and not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    rows = permission_rows(found)
    mine = ProjectPermission.objects.filter(project=found, user_id=request.user.pk).first()
    decision = PermissionDecisionForm(
        request.POST if "decide" in request.POST else None, permissions=rows
    )
    asking = PermissionRequestForm(
        request.POST if "ask" in request.POST else None, initial=request_initial(mine)
    )
    granting = PermissionGrantForm(request.POST if "grant" in request.POST else None)
    can_admin = permissions.can_admin(request.user, found)
    status, error = 200, None
    if request.method == "POST":
        try:
            if "grant" in request.POST:
                require(can_admin, f"You cannot change permissions of {found.full_name}.")
                if permission_granted(request, found, granting):
                    return redirect("project-permissions", found.ownername, found.name)
                status = 400
            elif permissions_saved(request, found, decision, asking, mine, can_admin):
                return redirect("project-permissions", found.ownername, found.name)
            status = 400
        except ServiceError as failure:
            error, status = failure.message, failure.status
    context = {
        "project": found,
        "rows": rows,
        "decision": decision,
        "asking": asking,
        "granting": granting,
        "mine": mine,
        "can_admin": can_admin,
        "is_owner": permissions.is_owner(request.user, found),
        "error": error,
        **abilities(request.user, found),
    }
    return render(request, "projects/permissions.html", context, status=status)


def permission_rows(project: Project):
    """Users who asked for or hold a right, by name."""
    rows = ProjectPermission.objects.filter(project=project).select_related("user")
    rows = rows.exclude(builder=PermissionLevel.NOTHING, admin=PermissionLevel.NOTHING)
    return rows.order_by("user__username")


def permissions_saved(request, project, decision, asking, mine, can_admin: bool) -> bool:
    """Apply the admins' decisions or the user's own request; False when the form is invalid."""
    if "decide" in request.POST:
        require(can_admin, f"You cannot change permissions of {project.full_name}.")
        if not decision.is_valid():
            return False
        apply_decisions(request.user, project, decision.changes())
        return True
    if not asking.is_valid():
        return False
    wanted = requested_changes(mine, asking.cleaned_data)
    if any(value is not None for value in wanted.values()):
        permission_request(user=request.user, project=project, **wanted)
    return True


def permission_granted(request, project: Project, form: PermissionGrantForm) -> bool:
    """Give the named user the ticked rights; False (with the form's errors) when it cannot."""
    if not form.is_valid():
        return False
    username = form.cleaned_data["username"].strip()
    target = User.objects.filter(username=username).first()
    if target is None:
        form.add_error("username", f"There is no user named {username}.")
        return False
    try:
        permission_set(user=request.user, project=project, target=target, **form.levels())
    except ServiceError as error:
        form.add_error(None, error.message)
        return False
    granted = " and ".join(right for right, level in form.levels().items() if level)
    messages.success(request, f"{target.username} is now {granted} in {project.full_name}.")
    return True


def apply_decisions(user, project: Project, changes: list[tuple]) -> None:
    # All rows or none: one refused change must not leave the others half applied.
    with transaction.atomic():
        for target, builder, admin in changes:
            permission_set(user=user, project=project, target=target, builder=builder, admin=admin)


def requested_changes(mine: ProjectPermission | None, ticked: dict) -> dict:
    """What to ask `permission_request` for: a ticked right already approved stays as it is."""
    wanted = {}
    for right in ("builder", "admin"):
        approved = mine is not None and getattr(mine, right) == PermissionLevel.APPROVED
        wanted[right] = None if ticked[right] and approved else ticked[right]
    return wanted


def request_initial(permission: ProjectPermission | None) -> dict:
    if permission is None:
        return {}
    asked = (PermissionLevel.REQUEST, PermissionLevel.APPROVED)
    return {"builder": permission.builder in asked, "admin": permission.admin in asked}
