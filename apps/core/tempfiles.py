"""The workers' short-lived files (signing homes, createrepo package lists) and their sweep."""

import logging
import os
import re
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import IO

from django.conf import settings

logger = logging.getLogger(__name__)
# coprsite-<kind>-<pid>-<random>[suffix]: what made it, and the process that owns it.
_NAME_RE = re.compile(r"coprsite-([a-z]+)-(\d+)-")


def worker_temp_root() -> Path:
    """WORKER_TEMP_DIR, made private to the service's user (it is in a shared temp dir)."""
    root = Path(settings.WORKER_TEMP_DIR)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(root)
    # Anyone could have made the directory first (or a symlink in its place).
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise RuntimeError(f"{root} is not a directory of this service's user")
    if stat.S_IMODE(info.st_mode) != 0o700:
        root.chmod(0o700)
    return root


def _prefix(kind: str) -> str:
    return f"coprsite-{kind}-{os.getpid()}-"


def worker_temp_dir(kind: str) -> Path:
    """A fresh private directory of this process; remove it when done."""
    return Path(tempfile.mkdtemp(prefix=_prefix(kind), dir=worker_temp_root()))


def worker_temp_file(kind: str, suffix: str = "") -> IO[str]:
    """A text file of this process, removed when closed."""
    return tempfile.NamedTemporaryFile(
        "w", prefix=_prefix(kind), suffix=suffix, dir=worker_temp_root()
    )


def stale_after_seconds() -> int:
    """How old a dead process's files must be before they are swept.

    Past the longest lease of its signing (a built task waits TASK_LEASE_SECONDS before
    reconcile has it signed again) and of its createrepo runs, the work is another
    worker's; what the dead process kept for it is of no use to anyone.
    """
    return max(settings.TASK_LEASE_SECONDS, settings.REPOSITORY_LEASE_SECONDS)


def worker_temp_sweep() -> int:
    """Remove what killed processes left in WORKER_TEMP_DIR; returns how many.

    A process removes its files however its work ends, except when it dies with them
    (SIGKILL, OOM, a reboot). An entry is removed only when the process named in it no
    longer runs on this host and it is older than stale_after_seconds(); one of a live
    process is never touched, however old.
    """
    root = Path(settings.WORKER_TEMP_DIR)
    if not root.is_dir():
        return 0
    cutoff = time.time() - stale_after_seconds()
    removed = 0
    for path in root.iterdir():
        match = _NAME_RE.match(path.name)
        if match is None or process_alive(int(match[2])):
            continue
        try:
            if path.lstat().st_mtime >= cutoff:
                continue
            # Never follows a symlink: a signing home links to the project's keys.
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            continue  # another worker's sweep was first
        except OSError:
            logger.exception("could not remove the left-over %s", path)
            continue
        logger.info("removed %s, left by a dead process", path)
        removed += 1
    return removed


def process_alive(pid: int) -> bool:
    """Whether a process runs; a zombie (ended, not yet reaped by its parent) does not."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return fields[0] not in {"Z", "X"}
