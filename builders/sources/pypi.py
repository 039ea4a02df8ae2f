"""PyPI: pyp2spec or pyp2rpm writes the spec of a Python project; rpmbuild makes the SRPM."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from .common import BUILD_DIR, PARAMS, fail, rpmbuild_bs, run, tool_env

# What fedora-license-data installs; pyp2spec --fedora-compliant reads it, else fetches it
# from gitlab.com, which the configured index being local does not make reachable.
FEDORA_LICENSES = "/usr/share/fedora-license-data/licenses/fedora-licenses.json"
PYP2RPM_WITH_INDEX = """
import sys
from pyp2rpm import settings
settings.PYPI_URL = sys.argv.pop(1) + "/pypi"
from pyp2rpm.bin import main
sys.argv[0] = "pyp2rpm"
main()
"""
PYP2SPEC_WITH_INDEX = """
import sys
from pyp2spec import pypi_loaders
from pyp2spec.pyp2spec import main
index = sys.argv.pop(1)
original = pypi_loaders._get_from_url
pypi_loaders._get_from_url = lambda url, *a, **k: original(
    url.replace("https://pypi.org", index, 1), *a, **k
)
sys.argv[0] = "pyp2spec"
main()
"""


def command_pypi() -> None:
    """pyp2spec or pyp2rpm writes the spec; rpmbuild -bs with our macros makes the SRPM."""
    name, version = PARAMS["name"], PARAMS.get("version") or ""
    workdir = BUILD_DIR / "pypi"
    workdir.mkdir(exist_ok=True)
    index = PARAMS.get("pypi_index") or ""
    env = {"PIP_INDEX_URL": index + "/simple"} if index else {}
    custom_index = bool(index) and index != "https://pypi.org"
    if PARAMS.get("generator") == "pyp2rpm":
        # -s -d: only write the spec there; pyp2rpm's own `rpmbuild -bs` (--srpm) would
        # lack the fallback %pypi_source and the index's %__pypi_url.
        options = [name, "-s", "-d", str(workdir), "-t", PARAMS.get("template") or "fedora"]
        for python_version in PARAMS.get("python_versions") or ["3"]:
            options += ["-b", str(python_version)]
        if version:
            options += ["-v", version]
        arguments = ["pyp2rpm", *options]
        if custom_index:
            arguments = ["python3", "-c", PYP2RPM_WITH_INDEX, index, *options]
        env["PATH"] = packager_path(workdir)
        run(arguments, cwd=workdir, env=env, what="pyp2rpm")
    else:
        # Without -o the spec is python-<name>.spec in workdir, as Copr's SRPMs hold it.
        options = [name, "--automode"]
        if Path(FEDORA_LICENSES).is_file():
            # Only warns about the license; without Fedora's data it would download it.
            options.append("--fedora-compliant")
        if version:
            options += ["-v", version]
        arguments = ["pyp2spec", *options]
        if custom_index:
            # pyp2spec asks https://pypi.org only; point its loader at the configured index.
            arguments = ["python3", "-c", PYP2SPEC_WITH_INDEX, index, *options]
        run(arguments, cwd=workdir, env=env, what="pyp2spec")
    specs = sorted(workdir.glob("*.spec"))
    if len(specs) != 1:
        fail(f"the spec generator wrote {len(specs)} spec files, expected one")
    rpmbuild_bs(specs[0], workdir)


def packager_path(workdir: Path) -> str:
    """PATH with an `rpmdev-packager` when the builder lacks rpmdevtools.

    pyp2rpm 3.3.10 asks rpmdev-packager for the changelog's packager; its fallback for a
    missing one crashes inside the template, leaving a %changelog line rpmbuild rejects.
    """
    path = tool_env()["PATH"]
    if shutil.which("rpmdev-packager", path=path):
        return path
    shim = workdir / "bin" / "rpmdev-packager"
    shim.parent.mkdir(exist_ok=True)
    shim.write_text('#!/bin/sh\necho "coprsite <builder@localhost>"\n')
    shim.chmod(0o755)
    return f"{shim.parent}:{path}"


COMMANDS = {"pypi": command_pypi}


# --- on the runner ------------------------------------------------------------------------


def prepare(helper: Any, source: dict[str, Any]) -> None:
    params = {
        "name": source.get("pypi_package_name", ""),
        "version": source.get("pypi_package_version") or "",
        "generator": source.get("spec_generator") or "pyp2spec",
        "template": source.get("spec_template") or "",
        "python_versions": source.get("python_versions") or ["3"],
    }
    helper.run("pypi", params)
