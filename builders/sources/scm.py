"""SCM (git or svn): clone, check out, then make the SRPM with rpkg, tito or make_srpm."""

from __future__ import annotations

import re
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from .common import (
    BUILD_DIR,
    GIT_PROTOCOLS,
    OUT_DIR,
    PARAMS,
    SOURCES_DIR,
    UserError,
    fail,
    inside,
    rpmbuild_bs,
    run,
    source_file_name,
    spec_name_version,
    spec_sources,
    tool_env,
)

# rpkg-client's rule: these names never make a directory "unpacked".
IGNORED_FILES = re.compile(r"(^README|.spec$|^\.|^tito.props$|^sources$)", re.IGNORECASE)
TARBALL_MODES = {
    ".tar.gz": "w:gz",
    ".tgz": "w:gz",
    ".tar.xz": "w:xz",
    ".txz": "w:xz",
    ".tar.bz2": "w:bz2",
    ".tbz2": "w:bz2",
    ".tar": "w",
}


# --- rpkg: packed or unpacked source directories --------------------------------------------


def is_packed(directory: Path, source_names: set[str]) -> bool:
    """rpkg-client's rule: only ignored files, or at least one file the spec names."""
    names = [entry.name for entry in directory.iterdir()]
    if all(IGNORED_FILES.search(name) for name in names):
        return True
    return any(name in source_names for name in names)


def pack_directory(directory: Path, tarball_name: str, top: str) -> Path:
    mode = next((m for suffix, m in TARBALL_MODES.items() if tarball_name.endswith(suffix)), "")
    if not mode:
        fail(f"cannot pack the sources: Source0 '{tarball_name}' is not a tarball name")
    staging = BUILD_DIR / "pack" / tarball_name
    staging.parent.mkdir(exist_ok=True)
    print(f"Packing {directory} into {tarball_name} (top directory {top})", flush=True)
    with tarfile.open(staging, mode) as tarball:
        for entry in sorted(directory.iterdir()):
            if entry.name in (".git", ".svn", tarball_name):
                continue
            # Symlinks go in as symlinks (tarfile never follows them).
            tarball.add(entry, arcname=f"{top}/{entry.name}")
    target = directory / tarball_name
    shutil.move(staging, target)
    return target


def rpkg_srpm(spec: Path, sourcedir: Path) -> None:
    sources = spec_sources(spec, sourcedir)
    names = {source_file_name(value) for _, value in sources}
    if (sourcedir / ".." / "rpkg.macros").exists() or "{{{" in spec.read_text(errors="replace"):
        spec = render_rpkg_templates(spec, sourcedir)
        sources = spec_sources(spec, sourcedir)
        names = {source_file_name(value) for _, value in sources}
    if is_packed(sourcedir, names):
        print(f"{sourcedir} is packed: building from it as it is", flush=True)
    else:
        source0 = next((value for tag, value in sources if tag.lower() in ("source0", "source")))
        name, version = spec_name_version(spec, sourcedir)
        print(f"{sourcedir} is unpacked", flush=True)
        pack_directory(sourcedir, source_file_name(source0), f"{name}-{version}")
    rpmbuild_bs(spec, sourcedir)


def render_rpkg_templates(spec: Path, sourcedir: Path) -> Path:
    """The {{{ git_dir_* }}} templates of rpkg-util 3 that Copr users most often use."""
    text = spec.read_text(errors="replace")
    repo = git_toplevel(sourcedir)
    name = re.search(r"^Name:\s*(\S+)", text, re.MULTILINE)
    base = name.group(1) if name and "{{{" not in name.group(1) else sourcedir.name
    version = git_dir_version(repo)
    values = {
        "git_dir_name": base,
        "git_repo_name": base,
        "git_dir_version": version,
        "git_repo_version": version,
        "git_dir_release": "1",
        "git_repo_release": "1",
        "git_dir_changelog": "* Thu Jan 01 1970 coprsite <coprsite@localhost> - 0\n- built",
        "git_repo_changelog": "* Thu Jan 01 1970 coprsite <coprsite@localhost> - 0\n- built",
    }

    def substitute(match: re.Match[str]) -> str:
        words = match.group(1).split()
        macro = words[0] if words else ""
        if macro in ("git_dir_pack", "git_repo_pack", "git_pack"):
            tarball = f"{base}-{version}.tar.gz"
            pack_directory(sourcedir, tarball, f"{base}-{version}")
            return tarball
        if macro in ("git_dir_setup_macro", "git_repo_setup_macro", "git_setup_macro"):
            return f"%setup -q -n {base}-{version}"
        if macro in values:
            return values[macro]
        fail(f"the rpkg template '{{{{{{ {macro} }}}}}}' is not supported here")

    rendered = re.sub(r"\{\{\{(.*?)\}\}\}", substitute, text, flags=re.DOTALL)
    target = BUILD_DIR / "rendered" / spec.name
    target.parent.mkdir(exist_ok=True)
    target.write_text(rendered)
    return target


def git_toplevel(directory: Path) -> Path:
    output = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"],
        cwd=directory,
        capture_output=True,
        text=True,
        env=tool_env(),
        check=False,
    )
    return Path(output.stdout.strip()) if output.returncode == 0 else directory


def git_dir_version(repo: Path) -> str:
    output = subprocess.run(
        ["git", "rev-list", "--count", "HEAD"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=tool_env(),
        check=False,
    )
    count = output.stdout.strip() or "0"
    return f"0.git.{count}"


def scm_paths() -> tuple[Path, Path, Path]:
    """The checkout, its subdirectory, and the spec (from the subdirectory or the root)."""
    repo = SOURCES_DIR / PARAMS["repo"]
    subdirectory = inside(repo, PARAMS.get("subdirectory") or "", "subdirectory")
    spec_name = PARAMS.get("spec") or ""
    if spec_name:
        spec = inside(subdirectory, spec_name, "spec")
        if not spec.is_file():
            spec = inside(repo, spec_name, "spec")
        if not spec.is_file():
            fail(f"the spec file '{spec_name}' does not exist in the repository")
    else:
        specs = sorted(subdirectory.glob("*.spec"))
        if len(specs) != 1:
            where = PARAMS.get("subdirectory") or "the repository root"
            found = "no spec file" if not specs else f"{len(specs)} spec files"
            fail(f"{found} in {where}: name the spec to use")
        spec = specs[0]
    return repo, subdirectory, spec


def command_scm_srpm() -> None:
    repo, subdirectory, spec = scm_paths()
    method = PARAMS.get("method") or "rpkg"
    if method == "rpkg":
        inside_subdirectory = subdirectory == spec.parent or subdirectory in spec.parents
        rpkg_srpm(spec, spec.parent if inside_subdirectory else subdirectory)
    elif method in ("tito", "tito_test"):
        if not (repo / ".tito").is_dir() and not (repo / "rel-eng").is_dir():
            fail(f"{method} needs a repository set up for tito (`tito init` makes .tito/)")
        test = ["--test"] if method == "tito_test" else []
        OUT_DIR.mkdir(exist_ok=True)
        # tito reads the checkout's own tags with `git ls-remote ./.`, the file transport
        # the clone step refuses; the repository's code runs from here on anyway (tito.props
        # can name a builder class in it), so only the sandbox confines this step.
        try:
            run(
                ["tito", "build", *test, "--srpm", f"--output={OUT_DIR}"],
                cwd=subdirectory,
                env={"GIT_ALLOW_PROTOCOL": GIT_PROTOCOLS + ":file"},
                what=method,
            )
        except UserError as error:
            if "Unable to lookup latest package info" in str(error):
                fail(
                    f"{method} found no tagged release in .tito/packages: tag one with "
                    "`tito tag` and push the tags"
                )
            raise
    elif method == "make_srpm":
        makefile = repo / ".copr" / "Makefile"
        if not makefile.is_file():
            fail("make_srpm needs a .copr/Makefile in the repository")
        OUT_DIR.mkdir(exist_ok=True)
        run(
            ["make", "-f", str(makefile), "srpm", f"outdir={OUT_DIR}", f"spec={spec}"],
            cwd=subdirectory,
            what="make srpm",
        )
    else:
        fail(f"unknown SRPM build method '{method}'")


COMMANDS = {"scm-srpm": command_scm_srpm}


# --- on the runner ------------------------------------------------------------------------


def prepare(helper: Any, source: dict[str, Any]) -> None:
    repo = helper.fetch(
        clone_url=str(source.get("clone_url", "")),
        committish=str(source.get("committish") or ""),
        scm_type=str(source.get("scm_type") or "git"),
    )
    params = {
        "repo": repo,
        "subdirectory": source.get("subdirectory") or "",
        "spec": source.get("spec") or "",
        "method": source.get("srpm_build_method") or "rpkg",
    }
    helper.run("scm-srpm", params)
