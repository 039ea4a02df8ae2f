"""Project pages: lists per owner, the overview, settings with per-chroot settings,
permissions, fork and integrations (webhook URLs)."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.accounts.models import Group, User
from apps.builds.models import Build, State
from apps.builds.selectors import last_build_per_chroot
from apps.core.errors import ServiceError
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
from apps.projects.pages import (
    abilities,
    project_or_404,
    projects_page,
    require,
    service_error,
)
from apps.projects.repofile import repo_chroots
from apps.projects.services import (
    permission_request,
    permission_set,
    project_chroot_edit,
    project_webhook_secret_regenerate,
)
from apps.workflows.projects import (
    project_create,
    project_delete,
    project_edit,
    project_fork,
    project_regenerate_repos,
)

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
        **enable_instructions(found),
        "fork_copying": found.forked_from_id is not None and fork_copying(found),
        "last_builds": last_build_per_chroot(found),
        "fork_count": found.forks.count(),
        **abilities(request.user, found),
    }
    return render(request, "projects/detail.html", context)


@login_required
@require_POST
def project_regenerate_view(request, owner: str, project: str):
    """Copr's "Regenerate" of a project in devel mode: publish what its builds have added."""
    found = project_or_404(owner, project)
    require(
        permissions.can_edit(request.user, found),
        f"You are not allowed to regenerate repositories of {found.full_name}.",
    )
    project_regenerate_repos(user=request.user, project=found)
    messages.success(
        request, "The repositories are being regenerated; new builds appear there in a minute."
    )
    return redirect("project-detail", found.ownername, found.name)


def enable_instructions(project: Project) -> dict:
    """What `projects/_enable.html` shows: the hub config to save, then `dnf copr enable
    HUB/owner/project` (a bare owner/project would ask Fedora's Copr)."""
    return {
        "hub_config_url": settings.PUBLIC_URL + reverse("hub-config"),
        "hub_config_path": hub_config_path(),
        "enable_command": enable_command(project.full_name),
    }


def fork_copying(project: Project) -> int:
    """Forked builds whose RPMs the sign queue is still copying and re-signing."""
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
