"""Where local builds keep their workspaces, and the sweep of those a killed worker left."""

import hashlib
import logging
import os
import re
import stat
import tempfile
from pathlib import Path

from django.conf import settings

from apps.builds.models import ACTIVE_STATES, BuildTask
from builders.sandbox import Workspace

logger = logging.getLogger(__name__)
# Workspace.create names a task's directory coprsite-build-<workspace_name>-<random>.
_TASK_WORKSPACE_RE = re.compile(r"coprsite-build-task(\d+)\.(\d+)-")


def workspace_name(task: BuildTask) -> str:
    """Names the task and its attempt: a retried task's old workspace is a leftover."""
    return f"task{task.pk}.{task.attempt}"


def workspaces_root() -> Path:
    """WORKSPACES_ROOT when the build uid can reach it, else a private one in the temp dir.

    Builds run as an unprivileged uid (65534 by default) that has to pass through every
    directory above its workspace. WORKSPACES_ROOT defaults to var/workspaces, and a
    checkout inside a mode-0700 directory (/root, a `mktemp -d`) closes that path; rather
    than opening the checkout (and the keys and database in var/) to every user, the
    workspaces then go to a 0711 directory in the temp dir, where they lived before
    WORKSPACES_ROOT was used. Its name comes from the configured root, so two instances on
    one host never sweep each other's workspaces.
    """
    configured = Path(settings.WORKSPACES_ROOT)
    _make_root(configured)
    if _traversable_by_builds(configured):
        return configured
    fallback = _fallback_root(configured)
    _make_root(fallback)
    return fallback


def workspaces_sweep() -> int:
    """Remove the workspaces of tasks that no longer run (their worker was killed).

    A task's runner removes its workspace however the task ends, except when its process
    dies with it (SIGKILL, OOM, a reboot); reconcile then finds the leftover here. A task
    that reconcile queued again has a new attempt, so its old workspace counts as left over.
    Returns how many were removed.
    """
    removed = 0
    configured = Path(settings.WORKSPACES_ROOT)
    for root in (configured, _fallback_root(configured)):
        if not root.is_dir():
            continue
        for path in root.iterdir():
            match = _TASK_WORKSPACE_RE.match(path.name)
            if match is None or _still_running(int(match[1]), int(match[2])):
                continue
            try:
                Workspace(path).cleanup()
                removed += 1
            except OSError:
                logger.exception("could not remove the leftover workspace %s", path)
    return removed


def _still_running(task_id: int, attempt: int) -> bool:
    return BuildTask.objects.filter(pk=task_id, attempt=attempt, state__in=ACTIVE_STATES).exists()


def _fallback_root(configured: Path) -> Path:
    digest = hashlib.sha256(str(configured.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"coprsite-workspaces-{digest}"


def _make_root(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    # In a shared temp dir anyone could have made the directory first (or a symlink).
    info = os.lstat(root)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise RuntimeError(f"{root} is not a directory of this service's user")
    # Builds may pass through, but not list the other builds' workspaces.
    root.chmod(0o711)


def _traversable_by_builds(root: Path) -> bool:
    if os.geteuid() != 0:
        return True  # builds then run as this same uid
    return all(os.stat(directory).st_mode & stat.S_IXOTH for directory in (root, *root.parents))
