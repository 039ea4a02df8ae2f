"""SRPM providers: run a source method (`builders.sources`) to turn a source into one SRPM.

The work happens in the sandbox (the method's commands, with network, as the build user,
under a file-size limit and the job's time limit); the runner only prepares inputs, checks
the checked-out tree between the steps, and takes the single SRPM out without following links.
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
from builders.network import unreachable_host_hint
from builders.results import UnsafeOutput, copy_out, list_files, safe_file_name
from builders.rpmbuild import copr_macros
from builders.sandbox import Watchdog, Workspace, run_sandboxed
from builders.sources import METHODS

SOURCES_PACKAGE = Path(__file__).with_name("sources")
ERROR_MARK = "coprsite-error: "
REPO_MARK = "coprsite-repo: "
COMMIT_MARK = "coprsite-commit: "
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
# The sandbox's entry point: the package is on a read-only bind, named on sys.path by hand
# because python -I leaves both the working and the script's directory out.
SANDBOX_ENTRY = (
    f"import sys; sys.path.insert(0, {SANDBOX_TOOLS!r}); "
    "from sources.__main__ import main; sys.exit(main(sys.argv[1:]))"
)


def makes_srpm(source: dict[str, Any]) -> bool:
    """Whether the source task has to build the SRPM (rather than take a ready one)."""
    method = METHODS.get(str(source.get("type")))
    if method is None:
        return False
    return method.makes_srpm(source) if hasattr(method, "makes_srpm") else True


def build_srpm(
    source: dict[str, Any],
    job: dict[str, Any],
    workspace: Workspace,
    *,
    max_file_bytes: int,
    log: LiveLog,
    watchdog: Watchdog,
) -> tuple[Path, str]:
    """Produce the SRPM of `source` in the sandbox; return it copied into staging, and the
    commit it was made from (SCM and DistGit sources; "" for the others)."""
    helper = Helper(
        source, job, workspace, max_file_bytes=max_file_bytes, log=log, watchdog=watchdog
    )
    source_type = source.get("type")
    method = METHODS.get(str(source_type))
    if method is None:
        raise BuildFailure(f"unsupported source type {source_type!r}")
    method.prepare(helper, source)
    return take_srpm(workspace), helper.commit


class Helper:
    """Runs source-method commands in the sandbox of one workspace (what methods call)."""

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
        self.commit = ""  # what `fetch` checked out

    def _prepare_tools(self) -> list[tuple[str, str]]:
        tools = self.workspace.root / "tools"
        tools.mkdir(mode=0o755, exist_ok=True)
        package = tools / SOURCES_PACKAGE.name
        package.mkdir(mode=0o755, exist_ok=True)
        for module in SOURCES_PACKAGE.glob("*.py"):
            shutil.copyfile(module, package / module.name)
            (package / module.name).chmod(0o644)
        (tools / "macros.coprsite").write_text(missing_macros())
        (tools / "macros.coprsite").chmod(0o644)
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
        argv += ["/usr/bin/python3", "-I", "-B", "-c", SANDBOX_ENTRY, command, arguments]
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

    # --- what source methods share -----------------------------------------------------

    def spec_file(self, *, url: str = "", path: str = "") -> None:
        """Make the SRPM of a spec file downloaded from `url` or copied from `path`."""
        directory = self.workspace.build_dir / "spec"
        directory.mkdir()
        if url:
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
            name = safe_file_name(Path(path).name, "package.spec")
            try:
                shutil.copyfile(path, directory / name)
            except OSError as exc:
                raise BuildFailure(f"the uploaded file cannot be read: {exc.strerror}") from exc
        self.run("spec-srpm", {"spec_name": name})

    def fetch(self, *, clone_url: str, committish: str, scm_type: str = "git") -> str:
        """Clone and check out in the sandbox, then check the tree here; its directory name."""
        params = {
            "clone_url": clone_url,
            "committish": committish,
            "scm_type": scm_type,
            "subdirectory": self.source.get("subdirectory") or "",
        }
        try:
            lines = self.run("scm-fetch", params)
        except BuildFailure as failure:
            # The portal accepted a local URL (ALLOW_PRIVATE_URLS), but the sandbox's network
            # cannot reach it: say what to set, first, before git's own words are cut.
            hint = unreachable_host_hint(clone_url)
            if hint:
                raise BuildFailure(shorten(f"{hint}. {failure.reason}")) from failure
            raise
        repo = next(
            (line.removeprefix(REPO_MARK) for line in lines if line.startswith(REPO_MARK)), ""
        )
        if not repo or "/" in repo or repo.startswith("."):
            raise BuildFailure("the repository checkout did not report its directory")
        check_tree(self.workspace.build_dir / "src" / repo, max_file_bytes=self.max_file_bytes)
        self.commit = next(
            (line.removeprefix(COMMIT_MARK) for line in lines if line.startswith(COMMIT_MARK)), ""
        ).strip()
        return repo


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
