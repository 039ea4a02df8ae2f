"""A project chroot's effective build configuration, computed as Copr's BuildConfigLogic does:
the repositories a build sees (copr:// expanded), its buildroot packages, and the settings
where a build overrides its chroot, which overrides its project."""

import re
from urllib.parse import parse_qs, urlencode, urlparse, urlunparse

from apps.core.paths import devel_repository_url, repository_url
from apps.projects.models import Project, ProjectChroot

# Values that mean "take it from the level above" in chroot and build settings.
INHERIT = ("", None, "unchanged")
REPO_PARAMS = ("priority", "module_hotfixes")


def project_repo_url(project: Project, dirname: str | None = None) -> str:
    return repository_url(f"{project.ownername}/{dirname or project.name}")


def repo_name(url: str) -> str:
    """Copr's `generate_repo_name`: the URL with every run of other characters turned to `_`."""
    name = re.sub("[^a-zA-Z0-9]", "_", url)
    name = re.sub("(__*)", "_", name)
    return re.sub("(_*$)|^_*", "", name)


def repo_params(url: str) -> dict:
    """`?priority=N` and `?module_hotfixes=...` of an additional repository, as dnf options."""
    params = {}
    for key, values in parse_qs(urlparse(url).query).items():
        if key in REPO_PARAMS:
            params[key] = int(values[0]) if values[0].isnumeric() else values[0]
    return params


def expand_repo_url(url: str, chroot_name: str) -> str:
    """Copr's `pre_process_repo_url`: `copr://owner/project` becomes that project's results
    URL for the chroot; `$chroot` and `$distname` are substituted; `priority` is dropped
    from the query because dnf gets it as an option."""
    parsed = urlparse(url)
    query = parse_qs(parsed.query)
    if parsed.scheme == "copr":
        project = parsed.path.strip("/").split("/")[0]
        url = repository_url(f"{parsed.netloc}/{project}/{chroot_name}/")
    elif "priority" in query:
        query.pop("priority")
        url = urlunparse(parsed._replace(query=urlencode(query, doseq=True)))
    url = url.replace("$chroot", chroot_name)
    return url.replace("$distname", chroot_name.rsplit("-", 2)[0])


def additional_repo_views(urls: list[str], chroot_name: str) -> list[dict]:
    views = []
    for url in urls:
        view = {
            "id": repo_name(url),
            "baseurl": expand_repo_url(url, chroot_name),
            "name": f"Additional repo {repo_name(url)}",
            **repo_params(url),
        }
        if copr_repo_has_module_hotfixes(url):
            view["module_hotfixes"] = True
        views.append(view)
    return views


def copr_repo_has_module_hotfixes(url: str) -> bool:
    """Whether `copr://owner/project` names a project here that sets module_hotfixes.

    Its packages then override modular ones in the build, as they do for that project's own
    builds (Copr's get_additional_repo_views). An unknown project is still a repository:
    the build says so when dnf cannot reach it.
    """
    parsed = urlparse(url)
    if parsed.scheme != "copr":
        return False
    name = parsed.path.strip("/").split("/")[0]
    return (
        Project.objects.by_ownername(parsed.netloc).filter(name=name, module_hotfixes=True).exists()
    )


def build_repos(project_chroot: ProjectChroot, dirname: str | None = None) -> list[dict]:
    """The repositories a build in this chroot installs from, in Copr's order and shape."""
    project = project_chroot.project
    chroot_name = project_chroot.chroot.name
    base = {
        "id": "copr_base",
        "baseurl": f"{project_repo_url(project)}/{chroot_name}/",
        "name": "Copr repository",
    }
    if project.module_hotfixes:
        base["module_hotfixes"] = True
    if project.repo_priority:
        base["priority"] = project.repo_priority
    repos = [base]
    if project.devel_mode:
        # Devel mode publishes new builds only here; later builds must still see them.
        repos.append(
            {
                "id": "copr_base_devel",
                "baseurl": devel_repository_url(project.ownername, project.name, chroot_name),
                "name": "Copr buildroot",
            }
        )
    if dirname and dirname != project.name:
        repos.append(
            {
                "id": "copr_coprdir",
                "baseurl": f"{project_repo_url(project, dirname)}/{chroot_name}/",
                "name": f"Copr {dirname} repository",
            }
        )
    repos += additional_repo_views(list(project.additional_repos), chroot_name)
    repos += additional_repo_views(list(project_chroot.additional_repos), chroot_name)
    return repos


def effective(*levels: str | None) -> str | None:
    """The last level (project, chroot, build) that sets a value and does not inherit."""
    value = None
    for level in levels:
        if level not in INHERIT:
            value = level
    return value


def isolation_setup(project: Project, project_chroot: ProjectChroot, build_isolation: str) -> str:
    """Copr's build isolation: the build's own, else the chroot's, else the project's;
    `default` (at any level) leaves it to the builder's mock configuration."""
    return effective(project.isolation, project_chroot.isolation, build_isolation) or "default"


def bootstrap_setup(project: Project, project_chroot: ProjectChroot, build_bootstrap: str) -> dict:
    """Copr's `bootstrap` (and `bootstrap_image` for a custom image) of a build, as the job
    record carries them: nothing when it is `default` (the mock configuration decides).

    Only the chroot names a custom image (Copr's project `bootstrap_image` is unused).
    """
    bootstrap = effective(project.bootstrap, project_chroot.bootstrap, build_bootstrap)
    if bootstrap in (None, "default"):
        return {}
    if bootstrap == "custom_image":
        return {"bootstrap": bootstrap, "bootstrap_image": project_chroot.bootstrap_image}
    return {"bootstrap": bootstrap}


def chroot_build_config(
    project_chroot: ProjectChroot, *, dirname: str | None, isolation: str, bootstrap: str
) -> dict:
    """What a builder needs of the project chroot to configure mock for one build, in the
    names of Copr's build task record (copr-rpmbuild renders its child.cfg from them).

    `isolation` and `bootstrap` are the build's own (`unchanged` inherits).
    """
    project = project_chroot.project
    config = {
        "repos": build_repos(project_chroot, dirname),
        "buildroot_pkgs": list(project_chroot.additional_packages),
        "with_opts": list(project_chroot.with_opts),
        "without_opts": list(project_chroot.without_opts),
        "isolation": isolation_setup(project, project_chroot, isolation),
        **bootstrap_setup(project, project_chroot, bootstrap),
    }
    modules = module_toggle(list(project_chroot.additional_modules))
    if modules:
        config["modules"] = {"toggle": modules}
    return config


def module_toggle(modules: list[str]) -> list[dict]:
    """`["mod:stream", "!other:stream"]` as Copr's `module_setup_commands`."""
    commands = []
    for module in modules:
        module = module.strip()
        if module.startswith("!"):
            commands.append({"disable": module[1:]})
        elif module:
            commands.append({"enable": module})
    return commands
