"""Move checked build output from the workspace into the results directory, Copr style."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from builders.livelog import LOG_NAME

RESULTS_JSON = "results.json"
SUCCESS_FILE = "success"
PREVIOUS_ATTEMPT_DIR = "prev_build_backup"
# What the buildroot says, as mock names it: rpmbuild's output, and how the buildroot was made.
BUILD_LOG = "build.log"
ROOT_LOG = "root.log"
# The build's chroot configuration (macros, mock config), as Copr archives its mock configs.
CONFIGS_ARCHIVE = "configs.tar.gz"
# Logs of one attempt: a later attempt keeps them in prev_build_backup/.
ATTEMPT_LOGS = (LOG_NAME, BUILD_LOG, ROOT_LOG)

_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
# O_NONBLOCK: a FIFO planted by the build must not hang the runner on open().
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK


class UnsafeOutput(Exception):
    """The build left something other than a regular file where a result should be."""


_SAFE_NAME = re.compile(r"^[A-Za-z0-9_+~^][A-Za-z0-9._+~^-]*$")


def safe_file_name(name: str, fallback: str) -> str:
    """`name` when it is harmless as a file name and on a command line, else `fallback`."""
    return name if _SAFE_NAME.match(name) else fallback


def clear_previous_attempt(result_dir: Path, keep: Sequence[Path] = ()) -> None:
    """Drop the RPMs and markers of an earlier attempt; keep its log in prev_build_backup/.

    `keep` are this job's own inputs, which the portal may have stored in the same place.
    """
    kept = {path.resolve() for path in keep}
    for entry in result_dir.iterdir():
        if entry.resolve() in kept:
            continue
        if entry.name.endswith((".rpm", ".spec")) or entry.name in (
            RESULTS_JSON,
            SUCCESS_FILE,
            CONFIGS_ARCHIVE,
        ):
            entry.unlink()
        elif entry.name.removesuffix(".gz") in ATTEMPT_LOGS:
            backup = result_dir / PREVIOUS_ATTEMPT_DIR
            backup.mkdir(exist_ok=True)
            os.replace(entry, backup / entry.name)


def _open_dir(root: Path, parts: Sequence[str]) -> int:
    """Open root/parts... as a directory without following any symlink the build made."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts:
            next_fd = os.open(part, _DIRECTORY_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = next_fd
    except BaseException:
        os.close(fd)
        raise
    return fd


def _entries(root: Path, parts: Sequence[str]) -> list[tuple[str, bool, bool]]:
    """(name, is regular file, is directory) of root/parts..., symlinks neither."""
    try:
        fd = _open_dir(root, parts)
    except OSError:
        # Missing, not a directory, or a symlink (ELOOP): nothing the runner will take.
        return []
    try:
        with os.scandir(fd) as entries:
            return [
                (
                    entry.name,
                    entry.is_file(follow_symlinks=False),
                    entry.is_dir(follow_symlinks=False),
                )
                for entry in entries
            ]
    finally:
        os.close(fd)


def list_files(root: Path, parts: Sequence[str], suffix: str) -> list[tuple[str, ...]]:
    """Relative paths of the regular files ending in `suffix` in root/parts....

    Symlinks are ignored: a build could point them at any file of the host.
    """
    return sorted(
        (*parts, name)
        for name, is_file, _ in _entries(root, parts)
        if is_file and name.endswith(suffix)
    )


def list_directories(root: Path, parts: Sequence[str]) -> list[str]:
    """Names of the real (not symlinked) subdirectories of root/parts...."""
    return sorted(name for name, _, is_dir in _entries(root, parts) if is_dir)


def copy_out(root: Path, parts: Sequence[str], destination: Path) -> Path:
    """Copy root/parts... to `destination`, refusing symlinks and non-regular files."""
    directory = _open_dir(root, parts[:-1])
    try:
        try:
            source = os.open(parts[-1], _FILE_FLAGS, dir_fd=directory)
        except OSError as exc:
            raise UnsafeOutput(f"{'/'.join(parts)}: {exc.strerror}") from exc
    finally:
        os.close(directory)
    with os.fdopen(source, "rb") as source_file:
        if not stat.S_ISREG(os.fstat(source).st_mode):
            raise UnsafeOutput(f"{'/'.join(parts)} is not a regular file")
        os.set_blocking(source, True)
        with open(destination, "wb") as target_file:
            shutil.copyfileobj(source_file, target_file)
    return destination


def publish(files: Sequence[Path], result_dir: Path) -> list[str]:
    """Move staged files into `result_dir`; all of them or, on error, none."""
    published: list[Path] = []
    try:
        for path in files:
            final = result_dir / path.name
            partial = result_dir / f".{path.name}.partial"
            # Copy under a hidden name, then rename: the portal never sees half a file.
            shutil.move(path, partial)
            os.replace(partial, final)
            published.append(final)
    except BaseException:
        for path in published:
            path.unlink(missing_ok=True)
        raise
    return [path.name for path in published]


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically (temporary file, then rename)."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(data, indent=4, sort_keys=True) + "\n")
    os.replace(partial, path)


def mark_success(result_dir: Path) -> None:
    """Create the `success` marker Copr's tools look for."""
    (result_dir / SUCCESS_FILE).touch()
