"""Package pages: a project's packages with their newest build, one package with its builds."""

from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_safe

from apps.builds import selectors
from apps.packages.models import Package
from apps.projects.views import abilities, page_of, project_or_404

PACKAGES_PER_PAGE = 100
BUILDS_PER_PAGE = 30


@require_safe
def package_list(request, owner: str, project: str):
    found = project_or_404(owner, project)
    packages = selectors.packages_with_latest_build(found).order_by("name")
    page = page_of(request, packages, PACKAGES_PER_PAGE)
    context = {"project": found, "page": page, **abilities(request.user, found)}
    return render(request, "packages/list.html", context)


@require_safe
def package_detail(request, owner: str, project: str, package: str):
    found = project_or_404(owner, project)
    row = Package.objects.filter(project=found, name=package).first()
    if row is None:
        raise Http404(f"Package {package} does not exist in {found.full_name}.")
    builds = selectors.builds_for_list().filter(package=row)
    page = page_of(request, builds, BUILDS_PER_PAGE)
    context = {"project": found, "package": row, "page": page, **abilities(request.user, found)}
    return render(request, "packages/detail.html", context)
