"""What the dnf copr plugin downloads: the hub config and the .repo files
(`dnf copr enable HUB/owner/project`)."""

import base64
import json

from django.conf import settings
from django.http import HttpResponse, HttpResponseNotFound
from django.views.decorators.http import require_safe

from apps.projects.hub import hub_config_text, hub_name
from apps.projects.models import Project
from apps.projects.repofile import find_repo_chroot, repo_chroots, repo_file_text, repo_filename

TEXT_PLAIN = "text/plain; charset=utf-8"


@require_safe
def hub_config(request):
    """The file to save as /etc/dnf/plugins/copr.d/HUB.conf, at one URL that never changes."""
    response = HttpResponse(hub_config_text(), content_type=TEXT_PLAIN)
    response["Content-Disposition"] = f'attachment; filename="{hub_name()}.conf"'
    return response


@require_safe
def repo_file(request, owner: str, project: str, name_release: str, repofile: str = ""):
    """Copr's `generate_repo_file`; `repofile` is ignored there too."""
    found = Project.objects.with_owner().by_ownername(owner).filter(name=project).first()
    if found is None:
        # No Copr-Error-Data header: that is how the plugin tells "no such project".
        return HttpResponseNotFound(
            f"Project {owner}/{project} does not exist.\n", content_type=TEXT_PLAIN
        )
    arch = request.GET.get("arch") or None
    chroot = find_repo_chroot(found, name_release, arch)
    if chroot is None:
        return chroot_not_found(found, f"{name_release}-{arch}" if arch else name_release)
    text = repo_file_text(project=found, chroot=chroot, arch=arch, public_url=settings.PUBLIC_URL)
    response = HttpResponse(text, content_type=TEXT_PLAIN)
    response["Content-Disposition"] = f"filename={repo_filename(found)}"
    return response


def group_repo_file(request, group: str, project: str, name_release: str, repofile: str = ""):
    """The `/coprs/g/<group>/…` spelling of `repo_file`."""
    return repo_file(request, f"@{group}", project, name_release, repofile)


def chroot_not_found(project: Project, searched: str) -> HttpResponseNotFound:
    """404 whose Copr-Error-Data header lets the plugin list the repositories there are."""
    available = [chroot.name for chroot in repo_chroots(project)]
    message = f"Chroot {searched} does not exist in {project.full_name}.\n"
    if available:
        message += "Available chroots:\n" + "".join(f"{name}\n" for name in available)
    else:
        message += f"There are no enabled chroots in {project.full_name}.\n"
    response = HttpResponseNotFound(message, content_type=TEXT_PLAIN)
    error_data = json.dumps({"available chroots": available}).encode()
    response["Copr-Error-Data"] = base64.b64encode(error_data).decode("ascii")
    return response
