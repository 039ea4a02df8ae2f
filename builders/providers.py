"""SRPM providers: turn a spec, repository, PyPI or gem name, or script into one SRPM.

The work happens in the sandbox (srpm_helper.py, with network, as the build user, under a
file-size limit and the job's time limit); the runner only prepares inputs, checks the
checked-out tree between the steps, and takes the single SRPM out without following links.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from builders.failures import BuildFailure, shorten
from builders.fetch import DOWNLOAD_NAME, download
from builders.livelog import LiveLog
from builders.results import UnsafeOutput, copy_out, list_files, safe_file_name
from builders.rpmbuild import copr_macros
from builders.sandbox import Watchdog, Workspace, run_sandboxed

HELPER = Path(__file__).with_name("srpm_helper.py")
ERROR_MARK = "coprsite-error: "
REPO_MARK = "coprsite-repo: "
# Where the runner's helper and macros appear in the sandbox (read-only).
SANDBOX_TOOLS = "/coprsite"
# A checkout with more entries than this is refused before anything runs from it.
MAX_TREE_ENTRIES = 200_000
# Macros Fedora's spec generators rely on; defined only where the builder lacks them.
FALLBACK_MACROS = {
    "autorelease": "%autorelease(e:s:pb:n) 1%{?dist}",
    "autochangelog": "%autochangelog %{nil}",
    "__pypi_url": "%__pypi_url https://files.pythonhosted.org/packages/source/",
    "pypi_source": (
        '%pypi_source() %{lua: local n = rpm.expand("%{?1}%{!?1:%{pypi_name}}"); '
        'local v = rpm.expand("%{?2}%{!?2:%{version}}"); '
        'local e = rpm.expand("%{?3}%{!?3:tar.gz}"); '
        'print(rpm.expand("%{__pypi_url}") .. n:sub(1, 1) .. "/" .. n .. "/" .. n .. "-" '
        '.. v .. "." .. e)}'
    ),
}
RUBYGEMS_URL = "https://rubygems.org"
SOURCE_TYPES = ("link", "upload", "scm", "pypi", "rubygems", "custom", "distgit")


def makes_srpm(source: dict[str, Any]) -> bool:
    """Whether the source task has to build the SRPM (rather than take a ready one)."""
    source_type = source.get("type")
    if source_type == "link":
        return urlsplit(str(source.get("url", ""))).path.endswith(".spec")
    if source_type == "upload":
        return str(source.get("path", "")).endswith(".spec")
    return source_type in SOURCE_TYPES


def build_srpm(
    source: dict[str, Any],
    job: dict[str, Any],
    workspace: Workspace,
    *,
    max_file_bytes: int,
    log: LiveLog,
    watchdog: Watchdog,
) -> Path:
    """Produce the SRPM of `source` in the sandbox; return it copied into staging."""
    helper = Helper(
        source, job, workspace, max_file_bytes=max_file_bytes, log=log, watchdog=watchdog
    )
    source_type = source.get("type")
    if source_type in ("link", "upload"):
        helper.spec_file()
    elif source_type == "scm":
        helper.scm()
    elif source_type == "distgit":
        helper.distgit()
    elif source_type == "custom":
        helper.custom()
    elif source_type == "pypi":
        helper.run("pypi", helper.pypi_params())
    elif source_type == "rubygems":
        gem = {"gem_name": source.get("gem_name", ""), "rubygems_url": source.get("rubygems_url")}
        helper.run("rubygems", {**gem, "rubygems_url": gem["rubygems_url"] or RUBYGEMS_URL})
    else:
        raise BuildFailure(f"unsupported source type {source_type!r}")
    return take_srpm(workspace)


class Helper:
    """Runs srpm_helper.py commands in the sandbox of one workspace."""

    def __init__(
        self,
        source: dict[str, Any],
        job: dict[str, Any],
        workspace: Workspace,
        *,
        max_file_bytes: int,
        log: LiveLog,
        watchdog: Watchdog,
    ) -> None:
        self.source = source
        self.job = job
        self.workspace = workspace
        self.max_file_bytes = max_file_bytes
        self.log = log
        self.watchdog = watchdog
        self.binds = self._prepare_tools()

    def _prepare_tools(self) -> list[tuple[str, str]]:
        tools = self.workspace.root / "tools"
        tools.mkdir(mode=0o755, exist_ok=True)
        shutil.copyfile(HELPER, tools / HELPER.name)
        (tools / "macros.coprsite").write_text(missing_macros())
        for path in tools.iterdir():
            path.chmod(0o644)
        binds = [(str(tools), SANDBOX_TOOLS)]
        builder_tools = self.source.get("builder_tools")
        if builder_tools and Path(builder_tools, "bin").is_dir():
            # Same path inside: the venv's scripts name their python by absolute path.
            binds.append((str(builder_tools), str(builder_tools)))
        return binds

    def common_params(self) -> dict[str, Any]:
        builder_tools = self.source.get("builder_tools")
        tools_bin = str(Path(builder_tools, "bin")) if builder_tools else ""
        return {
            "tools_bin": tools_bin if tools_bin and Path(tools_bin).is_dir() else "",
            "pypi_index": self.source.get("pypi_index", ""),
            "max_file_bytes": self.max_file_bytes,
            "copr_macros": copr_macros(
                owner=str(self.job.get("owner", "")),
                project=str(self.job.get("project", "")),
                build_id=int(self.job.get("build_id") or 0),
            ),
        }

    def run(self, command: str, params: dict[str, Any]) -> list[str]:
        """Run one helper command; a failure becomes BuildFailure with the helper's reason."""
        self.workspace.hand_over()
        arguments = json.dumps({**self.common_params(), **params})
        argv = ["prlimit", f"--fsize={self.max_file_bytes}", "--"]
        argv += ["/usr/bin/python3", "-I", f"{SANDBOX_TOOLS}/{HELPER.name}", command, arguments]
        self.log.info(f"Source step: {command}")
        outcome = run_sandboxed(
            argv,
            self.workspace,
            network=True,
            log=self.log,
            watchdog=self.watchdog,
            read_only_binds=self.binds,
        )
        if outcome.exit_code != 0:
            raise BuildFailure(self.failure_reason(outcome.lines, outcome.exit_code))
        return outcome.lines

    def failure_reason(self, lines: list[str], exit_code: int) -> str:
        reasons = [line.removeprefix(ERROR_MARK) for line in lines if line.startswith(ERROR_MARK)]
        if reasons:
            reason = reasons[-1]
            if "size limit" in reason:
                reason += f" ({self.max_file_bytes} bytes)"
            return shorten(reason)
        if exit_code == 128 + 25:  # SIGXFSZ: the helper itself hit the limit
            limit = self.max_file_bytes
            return f"a file grew beyond the size limit of the source task ({limit} bytes)"
        last = next((line for line in reversed(lines) if line.strip()), "no output")
        return shorten(f"making the SRPM failed (exit {exit_code}): {last}")

    # --- source types ---------------------------------------------------------------------

    def spec_file(self) -> None:
        directory = self.workspace.build_dir / "spec"
        directory.mkdir()
        if self.source.get("type") == "link":
            url = str(self.source["url"])
            name = safe_file_name(PurePosixPath(urlsplit(url).path).name, "package.spec")
            download(
                url,
                self.workspace,
                max_bytes=self.max_file_bytes,
                log=self.log,
                watchdog=self.watchdog,
            )
            copy_into(self.workspace, ("build", DOWNLOAD_NAME), directory / name)
        else:
            path = Path(str(self.source["path"]))
            name = safe_file_name(path.name, "package.spec")
            try:
                shutil.copyfile(path, directory / name)
            except OSError as exc:
                raise BuildFailure(f"the uploaded file cannot be read: {exc.strerror}") from exc
        self.run("spec-srpm", {"spec_name": name})

    def scm(self) -> None:
        repo = self.fetch(
            clone_url=str(self.source.get("clone_url", "")),
            committish=str(self.source.get("committish") or ""),
            scm_type=str(self.source.get("scm_type") or "git"),
        )
        params = {
            "repo": repo,
            "subdirectory": self.source.get("subdirectory") or "",
            "spec": self.source.get("spec") or "",
            "method": self.source.get("srpm_build_method") or "rpkg",
        }
        self.run("scm-srpm", params)

    def fetch(self, *, clone_url: str, committish: str, scm_type: str = "git") -> str:
        lines = self.run(
            "scm-fetch",
            {
                "clone_url": clone_url,
                "committish": committish,
                "scm_type": scm_type,
                "subdirectory": self.source.get("subdirectory") or "",
            },
        )
        repo = next(
            (line.removeprefix(REPO_MARK) for line in lines if line.startswith(REPO_MARK)), ""
        )
        if not repo or "/" in repo or repo.startswith("."):
            raise BuildFailure("the repository checkout did not report its directory")
        check_tree(self.workspace.build_dir / "src" / repo, max_file_bytes=self.max_file_bytes)
        return repo

    def distgit(self) -> None:
        repo = self.fetch(
            clone_url=str(self.source.get("clone_url", "")),
            committish=str(self.source.get("committish") or ""),
        )
        params = {
            "repo": repo,
            "lookaside_url": self.source.get("lookaside_url", ""),
            "package_name": self.source.get("package_name", ""),
            "namespace": self.source.get("namespace", ""),
        }
        self.run("distgit-sources", params)

    def custom(self) -> None:
        (self.workspace.build_dir / "script").write_text(str(self.source.get("script", "")))
        payload = self.source.get("hook_payload_path")
        sandbox_payload = ""
        if payload and Path(payload).is_file():
            shutil.copyfile(payload, self.workspace.build_dir / "hook_payload")
            sandbox_payload = "/build/hook_payload"
        builddeps = self.source.get("builddeps") or []
        if isinstance(builddeps, str):
            builddeps = builddeps.split()
        params = {
            "owner": self.job["owner"],
            "project": self.job["project"],
            "package": self.source.get("package") or "",
            "chroot": self.source.get("chroot") or "",
            "builddeps": builddeps,
            "resultdir": self.source.get("resultdir") or "",
            "hook_payload": sandbox_payload,
        }
        self.run("custom", params)

    def pypi_params(self) -> dict[str, Any]:
        return {
            "name": self.source.get("pypi_package_name", ""),
            "version": self.source.get("pypi_package_version") or "",
            "generator": self.source.get("spec_generator") or "pyp2spec",
            "template": self.source.get("spec_template") or "",
            "python_versions": self.source.get("python_versions") or ["3"],
        }


def copy_into(workspace: Workspace, parts: tuple[str, ...], destination: Path) -> None:
    try:
        copy_out(workspace.root, parts, destination)
    except (UnsafeOutput, FileNotFoundError) as exc:
        raise BuildFailure(f"source download failed: no file was written ({exc})") from exc


def check_tree(root: Path, *, max_file_bytes: int) -> None:
    """Refuse a checkout with links out of it, oversized files, or special files.

    Runs on the host without following any link, after the sandbox has ended.
    """
    entries = 0
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            entries += 1
            if entries > MAX_TREE_ENTRIES:
                raise BuildFailure(f"the repository has more than {MAX_TREE_ENTRIES} files")
            path = Path(directory, name)
            relative = path.relative_to(root)
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                check_link(relative, os.readlink(path))
            elif stat.S_ISREG(info.st_mode):
                if info.st_size > max_file_bytes:
                    raise BuildFailure(
                        f"the repository file {relative} is larger than the limit of "
                        f"{max_file_bytes} bytes"
                    )
            elif not stat.S_ISDIR(info.st_mode):
                raise BuildFailure(f"the repository holds a special file: {relative}")


def check_link(relative: Path, target: str) -> None:
    resolved = os.path.normpath(os.path.join(os.path.dirname(relative), target))
    if os.path.isabs(target) or resolved == ".." or resolved.startswith("../"):
        raise BuildFailure(
            shorten(f"the repository holds a symlink that leaves it: {relative} -> {target}")
        )


def take_srpm(workspace: Workspace) -> Path:
    """The one SRPM in build/out, copied to staging (links and non-files refused)."""
    found = list_files(workspace.root, ("build", "out"), ".src.rpm")
    if len(found) != 1:
        what = "no source RPM" if not found else f"{len(found)} source RPMs"
        raise BuildFailure(f"making the SRPM produced {what}, expected exactly one")
    parts = found[0]
    target = workspace.staging / safe_file_name(parts[-1], "source.src.rpm")
    try:
        copy_out(workspace.root, parts, target)
    except UnsafeOutput as exc:
        raise BuildFailure(f"the SRPM is unusable: {exc}") from exc
    return target


def missing_macros() -> str:
    """Definitions of FALLBACK_MACROS that this builder's rpm does not have."""
    lines = []
    for name, definition in FALLBACK_MACROS.items():
        probe = subprocess.run(
            ["rpm", "--eval", f"%{{?{name}:defined}}"],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", "HOME": "/"},
            timeout=60,
            check=False,
        )
        if probe.stdout.strip() != "defined":
            lines.append(definition)
    return "\n".join(lines) + "\n"
