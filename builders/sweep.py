"""On a builder host: remove what the jobs of dead workers left behind.

    python3 -m builders.sweep JOBS_DIR MIN_AGE_MINUTES [KEEP ...]

Every job directory under JOBS_DIR older than MIN_AGE_MINUTES and not named in KEEP (the
jobs the portal knows to be running here) is swept: its process group killed, the build
workspace its job file names removed (unmounting its disk: a runner killed mid-build
leaves both), then the directory itself. Prints the swept names, one per line.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from builders.remote import JOB_FILE, PID_FILE
from builders.sandbox import Workspace


def sweep_jobs(jobs_dir: Path, min_age_minutes: int, keep: set[str]) -> list[str]:
    if not jobs_dir.is_dir():
        return []
    oldest = time.time() - min_age_minutes * 60
    swept = []
    for job_dir in sorted(jobs_dir.iterdir()):
        # A job younger than that may belong to a task that started after the portal
        # listed its running ones.
        if job_dir.name in keep or not job_dir.is_dir() or job_dir.stat().st_mtime > oldest:
            continue
        sweep_job(job_dir)
        swept.append(job_dir.name)
    return swept


def sweep_job(job_dir: Path) -> None:
    with contextlib.suppress(OSError, ValueError, ProcessLookupError):
        os.killpg(int((job_dir / PID_FILE).read_text()), signal.SIGKILL)
    for workspace in job_workspaces(job_dir):
        Workspace(workspace).cleanup()
    shutil.rmtree(job_dir, ignore_errors=True)


def job_workspaces(job_dir: Path) -> list[Path]:
    """The workspaces the job's runner made (Workspace.create names them after the job)."""
    try:
        spec = json.loads((job_dir / JOB_FILE).read_text())
    except (OSError, ValueError):
        return []
    name = spec.get("workspace_name") or ""
    if not name or "/" in name or name in {".", ".."}:
        return []  # an unnamed workspace cannot be told from another job's
    base = Path(
        spec.get("workspaces_root")
        or os.environ.get("COPRSITE_BUILD_WORKDIR")
        or tempfile.gettempdir()
    )
    return [path for path in base.glob(f"coprsite-build-{name}-*") if path.is_dir()]


def main(argv: list[str]) -> int:
    jobs_dir, min_age, *keep = argv
    for name in sweep_jobs(Path(jobs_dir), int(min_age), set(keep)):
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
