"""Project pages at Copr's URLs that scripts and bookmarks use: the monitor (packages ×
chroots), the repositories page and the @group list under `/groups/g/<group>/coprs/`."""

from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_safe

from apps.builds.selectors import monitor_cells
from apps.core.paths import repository_url
from apps.packages.models import Package
from apps.projects.models import ProjectChroot
from apps.projects.pages import abilities, project_or_404
from apps.projects.repofile import repo_chroots
from apps.site.views_projects import enable_instructions, owner_projects, repo_links

MONITOR_VARIANTS = ("simple", "detailed")


@require_safe
def project_monitor(request, owner: str, project: str, variant: str = "simple"):
    """The state of each package's newest build in each active chroot (Copr's monitor)."""
    if variant not in MONITOR_VARIANTS:
        raise Http404(f"Unknown monitor variant {variant}; use simple or detailed.")
    found = project_or_404(owner, project)
    chroots = [
        pc.chroot
        for pc in ProjectChroot.objects.filter(project=found, chroot__is_active=True)
        .select_related("chroot")
        .order_by("chroot__name")
    ]
    cells = monitor_cells(found, [chroot.pk for chroot in chroots])
    packages = Package.objects.filter(project=found).order_by("name").values_list("pk", "name")
    rows = [
        {"name": name, "cells": [cells.get((package_id, chroot.pk)) for chroot in chroots]}
        for package_id, name in packages
    ]
    context = {
        "project": found,
        "chroots": chroots,
        "rows": rows,
        "detailed": variant == "detailed",
        **abilities(request.user, found),
    }
    return render(request, "projects/monitor.html", context)


@require_safe
def project_repositories(request, owner: str, project: str):
    """Each chroot's published repository: its URL, .repo file, and whether it is still built."""
    found = project_or_404(owner, project)
    chroots = list(repo_chroots(found))
    base = repository_url(f"{found.ownername}/{found.name}")
    repositories = [{"chroot": chroot, "baseurl": f"{base}/{chroot.name}/"} for chroot in chroots]
    context = {
        "project": found,
        "repositories": repositories,
        "repo_links": repo_links(found, chroots),
        **enable_instructions(found),
        **abilities(request.user, found),
    }
    return render(request, "projects/repositories.html", context)


@require_safe
def group_projects(request, group: str):
    """Copr's `/groups/g/<group>/coprs/`: the same list as `/coprs/g/<group>/`."""
    return owner_projects(request, owner=f"@{group}")
