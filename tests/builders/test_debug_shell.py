"""builders/debug_shell.py: a kept build's workspace, and the user's commands in its sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from builders.debug_shell import SESSION_FILE
from builders.runner import run_job
from builders.sandbox import DEFAULT_BUILD_UID, Workspace
from tests.builders.srpm_factory import make_srpm

REPO_ROOT = Path(__file__).resolve().parents[2]


def debug_session(directory: Path, command: str) -> subprocess.CompletedProcess[str]:
    """What sshd's forced command runs for the user's `ssh machine COMMAND`."""
    return subprocess.run(
        [sys.executable, "-m", "builders.debug_shell", str(directory)],
        cwd=REPO_ROOT,
        env={"PATH": os.environ["PATH"], "SSH_ORIGINAL_COMMAND": command},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def test_a_failed_build_kept_for_debugging_opens_its_workspace_in_its_sandbox(
    tmp_path: Path, rpm_job
) -> None:
    srpm = make_srpm(tmp_path, build_script="echo DEBUG-ME > marker; exit 1")
    kept = tmp_path / "debug"

    result = run_job(rpm_job(srpm, keep_workspace=str(kept)))

    assert result.state == "failed"
    workspace = Workspace(Path(json.loads((kept / SESSION_FILE).read_text())["workspace"]))
    try:
        session = debug_session(
            kept, "id -u; cat $(find /build -name marker); test ! -e /root && ls /etc"
        )
        assert session.returncode == 0, session.stderr
        uid, marker, *listing = session.stdout.split()
        if os.geteuid() == 0:
            assert int(uid) == DEFAULT_BUILD_UID
        assert marker == "DEBUG-ME"
        # The builder's own files stay out of sight, as for the build.
        assert "shadow" not in listing and "ssh" not in listing
        assert debug_session(kept, "exit 3").returncode == 3
    finally:
        workspace.cleanup()


def test_without_a_kept_build_the_session_says_so(tmp_path: Path) -> None:
    session = debug_session(tmp_path, "true")

    assert session.returncode == 1
    assert "keeps no build" in session.stderr
