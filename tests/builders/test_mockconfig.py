"""Tests for builders/mockconfig.py: child.cfg is read back as mock reads it, by executing it."""

from __future__ import annotations

import configparser
from typing import Any

import pytest

from builders.failures import BuildFailure
from builders.mockconfig import child_config
from builders.protocol import KIND_RPM, JobSpec

X86 = "fedora-43-x86_64"
RESULTS = "http://copr.example.org/results"


def job(**overrides: Any) -> JobSpec:
    fields: dict[str, Any] = {
        "task_id": f"7-{X86}",
        "kind": KIND_RPM,
        "build_id": 7,
        "owner": "alice",
        "project": "tools",
        "result_dir": "/results",
        "source": {"srpm_path": "/results/hello-1.0-1.src.rpm"},
        "chroot": X86,
        "arch": "x86_64",
        "mock_config": X86,
    }
    return JobSpec(**{**fields, **overrides})


def load_mock_config(text: str) -> tuple[dict, list[str]]:
    """Execute a mock config as mock does, on what a base config defines; returns the
    resulting config_opts and the configs it included."""
    included: list[str] = []
    config_opts: dict[str, Any] = {
        "package_manager": "dnf",
        "dnf.conf": "[main]\nkeepcache=1\n\n[fedora]\nbaseurl=https://mirror.example.org/\n",
        "macros": {"%_topdir": "/builddir/build"},
        "use_bootstrap": True,
        "use_bootstrap_image": True,
    }
    namespace = {"config_opts": config_opts, "include": included.append}
    exec(compile(text, "child.cfg", "exec"), namespace)  # noqa: S102 (mock reads it so)
    return config_opts, included


def dnf_repos(config_opts: dict) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(config_opts["dnf.conf"])
    return parser


def test_child_cfg_includes_the_chroot_and_adds_the_builds_settings() -> None:
    build_config = {
        "repos": [
            {"id": "copr_base", "name": "Copr repository",
             "baseurl": f"{RESULTS}/alice/tools/{X86}/", "module_hotfixes": True},
            {"id": "copr_base_devel", "name": "Copr buildroot",
             "baseurl": f"{RESULTS}/alice/tools/{X86}/devel/"},
            {"id": "copr_bob_lib", "name": "Additional repo copr_bob_lib",
             "baseurl": f"{RESULTS}/bob/lib/{X86}/", "module_hotfixes": True},
            {"id": "https_example_org", "name": "Additional repo https_example_org",
             "baseurl": "https://example.org/", "priority": 5},
        ],
        "buildroot_pkgs": ["make", "gcc"],
        "isolation": "simple",
        "bootstrap": "custom_image",
        "bootstrap_image": "registry.example.org/fedora:43",
        "modules": {"toggle": [{"enable": "nodejs:20"}, {"disable": "ruby:3"}]},
    }  # fmt: skip
    macros = {"copr_username": "alice", "buildtag": ".copr7", "dist": ".fc43"}

    text = child_config(job(build_config=build_config, enable_net=True), macros)
    config_opts, included = load_mock_config(text)

    assert included == [f"/etc/mock/{X86}.cfg"]
    assert config_opts["chroot_additional_packages"] == "make gcc"
    assert config_opts["isolation"] == "simple"
    assert config_opts["rpmbuild_networking"] is True and config_opts["use_host_resolv"] is True
    assert config_opts["use_bootstrap"] is True and config_opts["use_bootstrap_image"] is True
    assert config_opts["bootstrap_image"] == "registry.example.org/fedora:43"
    assert config_opts["module_setup_commands"] == [("enable", "nodejs:20"), ("disable", "ruby:3")]
    assert config_opts["plugin_conf"]["tmpfs_opts"]["keep_mounted"] is True
    assert config_opts["macros"] == {
        "%_topdir": "/builddir/build",
        "%copr_username": "alice",
        "%buildtag": ".copr7",
        "%dist": ".fc43",
    }
    repos = dnf_repos(config_opts)
    # The base config's repositories stay; the build's come after them.
    assert repos.sections() == [
        "main", "fedora", "copr_base", "copr_base_devel", "copr_bob_lib", "https_example_org",
    ]  # fmt: skip
    base = repos["copr_base"]
    assert base["baseurl"] == f"{RESULTS}/alice/tools/{X86}/"
    assert (base["gpgcheck"], base["skip_if_unavailable"], base["module_hotfixes"]) == (
        "0",
        "0",
        "1",
    )
    assert (base["metadata_expire"], base["cost"], base["best"]) == ("0", "1", "1")
    assert repos["copr_base_devel"]["skip_if_unavailable"] == "1"
    assert "module_hotfixes" not in repos["copr_base_devel"]
    assert repos["copr_bob_lib"]["module_hotfixes"] == "1"
    assert repos["https_example_org"]["priority"] == "5"


def test_default_settings_are_left_to_the_base_config() -> None:
    config_opts, included = load_mock_config(
        child_config(job(mock_config=None, build_config={"isolation": "default"}), {})
    )
    assert included == [f"/etc/mock/{X86}.cfg"]  # the chroot's name when no config is named
    assert "isolation" not in config_opts and "module_setup_commands" not in config_opts
    assert config_opts["use_bootstrap"] is True and config_opts["use_bootstrap_image"] is True
    assert config_opts["rpmbuild_networking"] is False
    assert dnf_repos(config_opts).sections() == ["main", "fedora"]


@pytest.mark.parametrize(
    ("bootstrap", "use_bootstrap", "use_image"),
    [("on", True, False), ("off", False, False), ("image", True, True)],
)
def test_bootstrap_settings(bootstrap: str, use_bootstrap: bool, use_image: bool) -> None:
    config_opts, _ = load_mock_config(child_config(job(build_config={"bootstrap": bootstrap}), {}))
    assert (config_opts["use_bootstrap"], config_opts["use_bootstrap_image"]) == (
        use_bootstrap,
        use_image,
    )
    assert "bootstrap_image" not in config_opts  # the base config's image


def test_a_config_path_is_included_as_it_is() -> None:
    _, included = load_mock_config(child_config(job(mock_config="/srv/mock/custom.cfg"), {}))
    assert included == ["/srv/mock/custom.cfg"]


def test_quotes_in_values_stay_text() -> None:
    sneaky = "x'); config_opts['isolation'] = ('chroot"
    config_opts, _ = load_mock_config(
        child_config(job(build_config={"buildroot_pkgs": [sneaky]}), {"vendor": sneaky})
    )
    assert config_opts["chroot_additional_packages"] == sneaky
    assert config_opts["macros"]["%vendor"] == sneaky
    assert "isolation" not in config_opts


@pytest.mark.parametrize(
    "build_config",
    [
        # A newline would add options (gpgcheck, another repo) to dnf's configuration.
        {"repos": [{"id": "x", "name": "x", "baseurl": "https://e.org/\ngpgcheck=1"}]},
        # mock expands Jinja in every value of its configuration.
        {"bootstrap": "custom_image", "bootstrap_image": "{{ __import__('os') }}"},
        {"buildroot_pkgs": ["{% for x in y %}"]},
        {"modules": {"toggle": [{"install": "nodejs:20"}]}},
    ],
)
def test_values_mock_would_misread_fail_the_build(build_config: dict) -> None:
    with pytest.raises(BuildFailure):
        child_config(job(build_config=build_config), {})
