"""mock's child.cfg for one build, as Copr's builders write it (copr-rpmbuild's mock.cfg.j2).

It includes the chroot's base config and adds the build's own settings: networking,
isolation, bootstrap, Copr's macros, modules, buildroot packages and the repositories.
mock executes the file as Python and expands `{{ }}` in its values as Jinja templates, so
every value is written as a Python literal (repr) and values that could add lines to the
dnf configuration or reach Jinja are refused.
"""

from __future__ import annotations

from typing import Any

from builders.failures import BuildFailure, shorten
from builders.protocol import JobSpec

MOCK_CONFIG_DIR = "/etc/mock"
CHILD_CONFIG = "child.cfg"
ISOLATIONS = ("nspawn", "simple")  # `default` is left to the base config
BOOTSTRAPS = ("on", "off", "image", "custom_image")
_UNSAFE = ("\n", "\r", "{{", "{%", "{#")
# Copr's dnf options of every build repository: always fresh metadata, and these repos
# before the distribution's (cost), with the best candidate or an error.
REPO_OPTIONS = ("gpgcheck=0", "enabled=1")
REPO_FRESHNESS = ("metadata_expire=0", "cost=1", "best=1")


def base_config(spec: JobSpec) -> str:
    """The chroot's mock config that child.cfg includes: a name in /etc/mock or a path."""
    name = spec.mock_config or spec.chroot or ""
    return name if "/" in name else f"{MOCK_CONFIG_DIR}/{name}.cfg"


def safe(value: Any, what: str) -> str:
    """`value` as text fit for child.cfg, or BuildFailure naming `what`."""
    text = str(value)
    if any(mark in text for mark in _UNSAFE):
        raise BuildFailure(shorten(f"invalid {what} for the mock configuration: {text!r}"))
    return text


def child_config(spec: JobSpec, macros: dict[str, str]) -> str:
    """The text of child.cfg; `macros` are the build's (Copr's and the chroot's)."""
    config = spec.build_config
    lines = [
        safe(
            f"# mock configuration of build {spec.build_id} of {spec.owner}/{spec.project}", "name"
        ),
        f"include({safe(base_config(spec), 'base config')!r})",
        "",
        "config_opts.setdefault('plugin_conf', {})",
        "config_opts['plugin_conf'].setdefault('tmpfs_opts', {})",
        "config_opts['plugin_conf']['tmpfs_opts']['keep_mounted'] = True",
    ]
    packages = [safe(name, "buildroot package") for name in config.get("buildroot_pkgs", [])]
    if packages:
        lines.append(f"config_opts['chroot_additional_packages'] = {' '.join(packages)!r}")
    lines.append(f"config_opts['rpmbuild_networking'] = {bool(spec.enable_net)}")
    lines.append(f"config_opts['use_host_resolv'] = {bool(spec.enable_net)}")
    isolation = config.get("isolation")
    if isolation in ISOLATIONS:
        lines.append(f"config_opts['isolation'] = {isolation!r}")
    for name, value in macros.items():
        lines.append(f"config_opts['macros'][{'%' + name!r}] = {safe(value, 'macro')!r}")
    lines += bootstrap_lines(config)
    lines += module_lines(config.get("modules"))
    repos = config.get("repos", [])
    if repos:
        text = "".join(repo_section(repo) for repo in repos)
        lines.append(f"config_opts[config_opts['package_manager'] + '.conf'] += {text!r}")
    return "\n".join(lines) + "\n"


def bootstrap_lines(config: dict[str, Any]) -> list[str]:
    """Copr's bootstrap setting; without one (`default`) the base config decides."""
    bootstrap = config.get("bootstrap")
    if bootstrap not in BOOTSTRAPS:
        return []
    image = bootstrap in ("image", "custom_image")
    lines = [
        f"config_opts['use_bootstrap'] = {bootstrap != 'off'}",
        f"config_opts['use_bootstrap_image'] = {image}",
    ]
    if image and config.get("bootstrap_image"):
        lines.append(
            f"config_opts['bootstrap_image'] = {safe(config['bootstrap_image'], 'image')!r}"
        )
    return lines


def module_lines(modules: dict[str, Any] | None) -> list[str]:
    """`module_setup_commands` from Copr's `{"toggle": [{"enable": "m:s"}, ...]}`."""
    commands = []
    for toggle in (modules or {}).get("toggle", []):
        for action, module in toggle.items():
            if action not in ("enable", "disable"):
                raise BuildFailure(shorten(f"invalid module toggle in the job: {action!r}"))
            commands.append((action, safe(module, "module")))
    return [f"config_opts['module_setup_commands'] = {commands!r}"] if commands else []


def repo_section(repo: dict[str, Any]) -> str:
    """One repository of the build in dnf's configuration syntax, as Copr writes it."""
    lines = [
        f"[{safe(repo['id'], 'repository id')}]",
        f"name='{safe(repo['name'], 'repository name')}'",
        f"baseurl={safe(repo['baseurl'], 'repository URL')}",
        *REPO_OPTIONS,
        # The devel repository exists only once the project's createrepo ran.
        f"skip_if_unavailable={int(repo['id'] == 'copr_base_devel')}",
        *REPO_FRESHNESS,
    ]
    if "priority" in repo:
        lines.append(f"priority={safe(repo['priority'], 'repository priority')}")
    hotfixes = repo.get("module_hotfixes")
    if hotfixes is not None:
        value = 1 if hotfixes is True else hotfixes
        lines.append(f"module_hotfixes={safe(value, 'module_hotfixes')}")
    return "\n" + "\n".join(lines) + "\n"
