"""apps/builds/workspaces.py: where workspaces live, and the sweep of leftover ones."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from apps.builds.models import State
from apps.builds.workspaces import (
    _fallback_root,
    workspace_name,
    workspaces_root,
    workspaces_sweep,
)
from builders.sandbox import DEFAULT_BUILD_UID, Workspace
from tests.factories import BuildTaskFactory

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="builds change uid only as root")


@pytest.fixture
def open_dir():
    """A directory every user may pass through (tmp_path's parents are 0700)."""
    directory = Path(tempfile.mkdtemp(prefix="coprsite-test-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory)


def build_uid_can_enter(directory: Path) -> bool:
    uid = str(DEFAULT_BUILD_UID)
    entered = subprocess.run(
        ["setpriv", "--reuid", uid, "--regid", uid, "--clear-groups", "test", "-x", directory]
    )
    return entered.returncode == 0


@needs_root
def test_the_configured_root_is_used_when_builds_can_reach_it(settings, open_dir):
    settings.WORKSPACES_ROOT = open_dir / "workspaces"
    assert workspaces_root() == open_dir / "workspaces"
    assert (open_dir / "workspaces").stat().st_mode & 0o777 == 0o711
    assert build_uid_can_enter(open_dir / "workspaces")


@needs_root
def test_a_root_behind_a_private_directory_falls_back_to_the_temp_dir(settings, tmp_path):
    private = tmp_path / "checkout"
    private.mkdir(mode=0o700)
    settings.WORKSPACES_ROOT = private / "var" / "workspaces"
    root = workspaces_root()
    try:
        assert root.parent == Path(tempfile.gettempdir())
        assert root.stat().st_mode & 0o777 == 0o711
        assert build_uid_can_enter(root)
        assert not build_uid_can_enter(private / "var" / "workspaces")
        workspace = Workspace.create(base=str(root), name="task1.0")
        assert build_uid_can_enter(workspace.build_dir)
    finally:
        shutil.rmtree(root)


@needs_root
def test_a_fallback_made_by_another_user_is_refused(settings, tmp_path):
    private = tmp_path / "checkout"
    private.mkdir(mode=0o700)
    settings.WORKSPACES_ROOT = private / "workspaces"
    # Another local user was first to make the directory the fallback would use.
    squatted = _fallback_root(settings.WORKSPACES_ROOT)
    squatted.mkdir()
    try:
        os.chown(squatted, DEFAULT_BUILD_UID, DEFAULT_BUILD_UID)
        with pytest.raises(RuntimeError, match="not a directory of this service's user"):
            workspaces_root()
    finally:
        squatted.rmdir()


@pytest.mark.django_db
def test_sweep_removes_only_workspaces_of_tasks_that_no_longer_run(settings, open_dir):
    settings.WORKSPACES_ROOT = open_dir / "workspaces"
    root = str(workspaces_root())
    running = BuildTaskFactory(state=State.RUNNING, attempt=1)
    ended = BuildTaskFactory(state=State.FAILED)
    kept = Workspace.create(base=root, name=workspace_name(running))
    earlier_attempt = Workspace.create(base=root, name=f"task{running.pk}.0")
    (earlier_attempt.build_dir / "BUILDROOT").mkdir(mode=0o500)  # as rpmbuild leaves it
    of_ended = Workspace.create(base=root, name=workspace_name(ended))
    unrelated = Path(root) / "lost+found"
    unrelated.mkdir()

    assert workspaces_sweep() == 2

    assert kept.root.is_dir() and unrelated.is_dir()
    assert not earlier_attempt.root.exists() and not of_ended.root.exists()
