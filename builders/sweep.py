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
    # No pid file, not a number, or the group is gone (ProcessLookupError is an OSError).
    with contextlib.suppress(OSError, ValueError):
        os.killpg(int((job_dir / PID_FILE).read_text()), signal.SIGKILL)
    for workspace in job_workspaces(job_dir):
        workspace.cleanup()
    shutil.rmtree(job_dir, ignore_errors=True)


def job_workspaces(job_dir: Path) -> list[Workspace]:
    """The workspaces the job's runner made (Workspace.create names them after the job)."""
    try:
        spec = json.loads((job_dir / JOB_FILE).read_text())
        return Workspace.named(
            base=spec.get("workspaces_root"), name=spec.get("workspace_name") or ""
        )
    except (OSError, ValueError, AttributeError):  # no job file, or not one the portal wrote
        return []


def main(argv: list[str]) -> int:
    jobs_dir, min_age, *keep = argv
    for name in sweep_jobs(Path(jobs_dir), int(min_age), set(keep)):
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
