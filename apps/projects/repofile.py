"""The .repo file `dnf copr enable` downloads: chroot lookup and the text Copr serves."""

from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import Q, QuerySet

from apps.projects.models import Chroot, Project

# Distributions whose results dirs are named with `$releasever`, so one .repo line serves
# every release of the distribution (mageia cauldron is a rolling release with no number).
RELEASEVER_OS_RELEASES = frozenset({"fedora", "centos-stream", "opensuse-leap", "mageia"})
# A chroot arch and the 32-bit arch whose packages a multilib project also publishes.
MULTILIB_PAIRS = {"x86_64": "i386"}
# Slightly more expensive than dnf's default cost of 1000, so 64-bit packages win.
MULTILIB_COST = 1100


def repo_chroots(project: Project) -> QuerySet[Chroot]:
    """Chroots of `project` a .repo file may point at: active ones and kept end-of-life ones."""
    return (
        Chroot.objects.filter(project_chroots__project=project)
        .filter(Q(is_active=True) | Q(end_of_life=True))
        .order_by("name")
    )


def find_repo_chroot(project: Project, name_release: str, arch: str | None) -> Chroot | None:
    """The project's chroot for `fedora-43` (and `x86_64` when given), as Copr picks it."""
    # Without an arch any arch will do: the main section says `$basearch` anyway.
    for chroot in repo_chroots(project):
        if chroot.name.startswith(f"{name_release}-") and arch in (None, chroot.arch):
            return chroot
    return None


def repo_file_text(*, project: Project, chroot: Chroot, arch: str | None, public_url: str) -> str:
    """The .repo text: the main section, then the multilib one when it applies."""
    sections = [repo_section(project=project, chroot=chroot, public_url=public_url)]
    multilib_arch = arch and multilib_twin_arch(project, chroot)
    if multilib_arch:
        sections.append(
            repo_section(
                project=project,
                chroot=chroot,
                public_url=public_url,
                arch=multilib_arch,
                cost=MULTILIB_COST,
            )
        )
    # Runtime dependency sections (`coprdep:` ids) come with the APIv3 work that lets
    # users set `runtime_dependencies`.
    return "\n".join(sections)


def multilib_twin_arch(project: Project, chroot: Chroot) -> str | None:
    """`i386` when the project is multilib and enables the 32-bit twin of `chroot`."""
    twin_arch = MULTILIB_PAIRS.get(chroot.arch)
    if not project.multilib or twin_arch is None:
        return None
    twin_name = f"{chroot.name_release}-{twin_arch}"
    twin_enabled = project.project_chroots.filter(
        chroot__name=twin_name, chroot__is_active=True
    ).exists()
    return twin_arch if twin_enabled else None


def repo_section(
    *,
    project: Project,
    chroot: Chroot,
    public_url: str,
    arch: str | None = None,
    cost: int | None = None,
) -> str:
    """One `[copr:…]` section; `arch` is only given for the multilib (`:ml`) twin."""
    hostname = urlsplit(public_url).hostname
    # The repository is where the results are served (RESULTS_URL), the id names the site.
    results = settings.RESULTS_URL or f"{public_url}/results"
    project_url = f"{results}/{project.ownername}/{project.name}"
    # The packages come from the repository store (Pulp's content app with the Pulp store);
    # pubkey.gpg is always in the results tree.
    if settings.REPOSITORY_STORE == "pulp":
        repos_url = f"{settings.PULP_CONTENT_URL}/{project.ownername}/{project.name}"
    else:
        repos_url = project_url
    repo_id = f"copr:{hostname}:{project.ownername.replace('@', 'group_')}:{project.name}"
    name = f"Copr repo for {project.name} owned by {project.ownername}"
    lines = [
        f"[{repo_id}:ml]" if arch else f"[{repo_id}]",
        f"name={name} ({arch})" if arch else f"name={name}",
        f"baseurl={repos_url}/{results_dirname(chroot, arch)}/",
        "type=rpm-md",
        "skip_if_unavailable=True",
        "gpgcheck=1",
        f"gpgkey={project_url}/pubkey.gpg",
        "repo_gpgcheck=0",
    ]
    if cost:
        lines.append(f"cost={cost}")
    lines += ["enabled=1", "enabled_metadata=1"]
    if project.module_hotfixes:
        lines.append("module_hotfixes=1")
    if project.repo_priority is not None:
        lines.append(f"priority={project.repo_priority}")
    return "\n".join(lines) + "\n"


def results_dirname(chroot: Chroot, arch: str | None) -> str:
    """`fedora-$releasever-$basearch` or `epel-9-$basearch`: the chroot dir dnf expands."""
    version = chroot.os_version
    if chroot.os_release in RELEASEVER_OS_RELEASES and version != "cauldron":
        version = "$releasever"
    return f"{chroot.os_release}-{version}-{arch or '$basearch'}"


def repo_filename(project: Project) -> str:
    """`group_packagers-hello.repo`, the name Copr suggests in Content-Disposition."""
    return f"{project.ownername.replace('@', 'group_')}-{project.name}.repo"
