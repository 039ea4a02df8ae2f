"""Package pages: the list, one package with its builds, add, edit, rebuild, reset, delete."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.builds import selectors
from apps.builds.package_builds import package_build, package_delete
from apps.core.errors import ServiceError
from apps.packages.forms import DEFAULT_SOURCE_TYPE, PACKAGE_ADD_FORMS, PACKAGE_EDIT_FORMS
from apps.packages.models import Package, SourceType
from apps.packages.services import package_add, package_edit, package_reset
from apps.packages.source_display import source_items
from apps.projects import permissions
from apps.projects.pages import (
    abilities,
    page_by_ids,
    page_of,
    project_or_404,
    require,
    service_error,
)

PACKAGES_PER_PAGE = 100
BUILDS_PER_PAGE = 30


@require_safe
def package_list(request, owner: str, project: str):
    found = project_or_404(owner, project)
    packages = selectors.packages_with_latest_build(found).order_by("name")
    page = page_of(request, packages, PACKAGES_PER_PAGE)
    context = {"project": found, "page": page, **abilities(request.user, found)}
    return render(request, "packages/list.html", context)


def package_or_404(found, name: str) -> Package:
    row = Package.objects.filter(project=found, name=name).first()
    if row is None:
        raise Http404(f"Package {name} does not exist in {found.full_name}.")
    return row


@require_safe
def package_detail(request, owner: str, project: str, package: str):
    """The default source, the latest and latest successful builds, then every build."""
    found = project_or_404(owner, project)
    return package_page(request, found, package_or_404(found, package))


def package_page(request, found, row: Package, error: ServiceError | None = None):
    """The package page; after a refused rebuild or reset, with the service's message on top."""
    latest, latest_succeeded = selectors.latest_builds(row)
    builds = selectors.builds_for_list().filter(package=row)
    context = {
        "project": found,
        "package": row,
        "page": page_by_ids(request, builds, BUILDS_PER_PAGE, read=selectors.build_rows),
        "latest": latest,
        "latest_succeeded": latest_succeeded,
        "source_title": source_title(row.source_type),
        "source_items": source_items(row.source_json),
        "error": error.message if error else None,
        **abilities(request.user, found),
    }
    return render(request, "packages/detail.html", context, status=error.status if error else 200)


def source_title(source_type: str) -> str:
    form = PACKAGE_EDIT_FORMS.get(source_type)
    return form.title if form else source_type


def source_type_tabs(url_name: str, args: list) -> list[tuple[str, str, str]]:
    """(source type, title, URL) for the source-type tabs of the package forms."""
    return [
        (name, form.title, reverse(url_name, args=[*args, name]))
        for name, form in PACKAGE_EDIT_FORMS.items()
    ]


@login_required
@require_http_methods(["GET", "POST"])
def package_new(request, owner: str, project: str, source_type: str = DEFAULT_SOURCE_TYPE):
    found = project_or_404(owner, project)
    form_class = PACKAGE_ADD_FORMS.get(source_type)
    if form_class is None:
        raise Http404(f"Packages cannot have the source type {source_type}.")
    require(permissions.can_edit(request.user, found), f"You cannot add packages to {found}.")
    form = form_class(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                created = package_add(
                    user=request.user,
                    project=found,
                    name=form.cleaned_data["name"],
                    source_type=form.source_type,
                    source_json=form.source_json(),
                    **form.settings(),
                )
            except ServiceError as error:
                status = service_error(form, error)
            else:
                return redirect("package-detail", found.ownername, found.name, created.name)
    context = {
        "project": found,
        "form": form,
        "source_type": source_type,
        "tabs": source_type_tabs("package-new-type", [found.ownername, found.name]),
        **abilities(request.user, found),
    }
    return render(request, "packages/edit.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def package_edit_view(request, owner: str, project: str, package: str, source_type: str = ""):
    """Edit the default source (any type; a new type starts empty) and the settings."""
    found = project_or_404(owner, project)
    row = package_or_404(found, package)
    current = row.source_type if row.source_type in PACKAGE_EDIT_FORMS else DEFAULT_SOURCE_TYPE
    source_type = source_type or current
    form_class = PACKAGE_EDIT_FORMS.get(source_type)
    if form_class is None or source_type == SourceType.UNSET:
        raise Http404(f"Packages cannot have the source type {source_type}.")
    require(permissions.can_edit(request.user, found), f"You cannot edit packages of {found}.")
    initial = form_class.initial_for(row)
    if source_type != row.source_type:
        initial = {name: initial[name] for name in form_class.settings_fields}
    form = form_class(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                package_edit(
                    user=request.user,
                    package=row,
                    source_type=form.source_type,
                    source_json=form.source_json(),
                    **form.settings(),
                )
            except ServiceError as error:
                status = service_error(form, error)
            else:
                return redirect("package-detail", found.ownername, found.name, row.name)
    context = {
        "project": found,
        "package": row,
        "form": form,
        "source_type": source_type,
        "tabs": source_type_tabs("package-edit-type", [found.ownername, found.name, row.name]),
        **abilities(request.user, found),
    }
    return render(request, "packages/edit.html", context, status=status)


@login_required
@require_POST
def package_rebuild(request, owner: str, project: str, package: str):
    """Build the package's default source in its chroots; builders may do this too."""
    found = project_or_404(owner, project)
    row = package_or_404(found, package)
    require(permissions.can_build_in(request.user, found), f"You cannot build in {found}.")
    try:
        build = package_build(user=request.user, package=row)
    except ServiceError as error:
        return package_page(request, found, row, error)
    return redirect("build-detail", build.pk)


@login_required
@require_POST
def package_reset_view(request, owner: str, project: str, package: str):
    found = project_or_404(owner, project)
    row = package_or_404(found, package)
    require(permissions.can_edit(request.user, found), f"You cannot edit packages of {found}.")
    try:
        package_reset(user=request.user, package=row)
    except ServiceError as error:
        return package_page(request, found, row, error)
    messages.success(request, f"Package {row.name} was reset: it has no source now.")
    return redirect("package-detail", found.ownername, found.name, row.name)


@login_required
@require_http_methods(["GET", "POST"])
def package_delete_view(request, owner: str, project: str, package: str):
    """A confirmation page; POST deletes the package with its builds."""
    found = project_or_404(owner, project)
    row = package_or_404(found, package)
    require(permissions.can_edit(request.user, found), f"You cannot delete packages of {found}.")
    error, status = None, 200
    if request.method == "POST":
        try:
            package_delete(user=request.user, package=row)
        except ServiceError as failure:
            error, status = failure.message, failure.status
        else:
            messages.success(request, f"Package {row.name} and its builds were deleted.")
            return redirect("package-list", found.ownername, found.name)
    context = {"project": found, "package": row, "error": error}
    context.update(abilities(request.user, found))
    return render(request, "packages/delete.html", context, status=status)
