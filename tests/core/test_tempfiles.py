"""WORKER_TEMP_DIR: what a killed worker left there is swept; a live process's files never are."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from apps.core import ticker
from apps.core.tempfiles import (
    stale_after_seconds,
    worker_temp_dir,
    worker_temp_file,
    worker_temp_sweep,
)
from apps.workflows.reconcile import reconcile_all

REPO_ROOT = Path(__file__).resolve().parents[2]
# A worker in the middle of signing and of a createrepo run: both files made by the real
# helpers, then the process waits to be killed.
WORKER = """
import django, sys, time
django.setup()
from apps.core.tempfiles import worker_temp_dir, worker_temp_file
home = worker_temp_dir("gpg")
(home / "h").symlink_to(sys.argv[1])
listing = worker_temp_file("pkglist", suffix=".txt")
listing.write("00000001-hello/hello-1.0-1.noarch.rpm\\n")
listing.flush()
print(home, listing.name, flush=True)
time.sleep(600)
"""


@pytest.fixture
def temp_dir(settings, tmp_path: Path) -> Path:
    settings.WORKER_TEMP_DIR = tmp_path / "worker-tmp"
    return settings.WORKER_TEMP_DIR


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    """What a signing home links to: the project's keys, which no sweep may touch."""
    home = tmp_path / "keys" / "alice" / "hello"
    home.mkdir(parents=True)
    (home / "private-keys-v1.d").mkdir()
    (home / "pubring.kbx").write_bytes(b"keyring")
    return home


def killed_worker_leftovers(temp_dir: Path, keys: Path) -> list[Path]:
    """Run a worker that makes a signing home and a package list, and SIGKILL it."""
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(keys)],
        cwd=REPO_ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "coprsite.settings",
            "WORKER_TEMP_DIR": str(temp_dir),
        },
        stdout=subprocess.PIPE,
        text=True,
    )
    line = worker.stdout.readline().split()
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    worker.stdout.close()
    paths = [Path(name) for name in line]
    assert len(paths) == 2 and all(path.exists() for path in paths)
    assert all(f"-{worker.pid}-" in path.name for path in paths)
    return paths


def aged(path: Path, seconds: float) -> Path:
    past = time.time() - seconds
    os.utime(path, (past, past), follow_symlinks=False)
    return path


def test_killed_workers_files_are_swept_and_a_live_ones_kept(temp_dir: Path, keys: Path):
    signing_home, pkglist = killed_worker_leftovers(temp_dir, keys)
    old = stale_after_seconds() + 60
    aged(signing_home, old)
    aged(pkglist, old)
    # This test's own process is alive: its files stay, however old.
    live_home = aged(worker_temp_dir("gpg"), 10 * old)
    with worker_temp_file("pkglist", suffix=".txt") as live_listing:
        aged(Path(live_listing.name), 10 * old)

        assert worker_temp_sweep() == 2

        assert not signing_home.exists() and not pkglist.exists()
        assert live_home.is_dir() and Path(live_listing.name).is_file()
    # The symlinked keys were not followed.
    assert (keys / "pubring.kbx").read_bytes() == b"keyring"
    assert (keys / "private-keys-v1.d").is_dir()


def test_a_dead_workers_recent_files_wait_for_its_lease(temp_dir: Path, keys: Path):
    signing_home, pkglist = killed_worker_leftovers(temp_dir, keys)
    aged(signing_home, stale_after_seconds() - 30)

    assert worker_temp_sweep() == 0
    assert signing_home.exists() and pkglist.exists()


@pytest.mark.django_db
def test_periodic_reconcile_sweeps_the_worker_temp_dir(temp_dir: Path, keys: Path, broker):
    signing_home, pkglist = killed_worker_leftovers(temp_dir, keys)
    aged(signing_home, stale_after_seconds() + 60)
    aged(pkglist, stale_after_seconds() + 60)

    reconcile_all()

    assert not signing_home.exists() and not pkglist.exists()


def test_someone_elses_directory_is_refused(settings, tmp_path: Path):
    """In a shared temp dir, a symlink planted at WORKER_TEMP_DIR is not used."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    settings.WORKER_TEMP_DIR = tmp_path / "planted"
    settings.WORKER_TEMP_DIR.symlink_to(elsewhere)
    with pytest.raises(RuntimeError, match="not a directory of this service's user"):
        worker_temp_dir("gpg")


def test_a_worker_sweeps_at_boot(temp_dir: Path, keys: Path, monkeypatch):
    """Reconcile may run on another host: each worker also sweeps its own host's dir."""
    signing_home, pkglist = killed_worker_leftovers(temp_dir, keys)
    aged(signing_home, stale_after_seconds() + 60)
    aged(pkglist, stale_after_seconds() + 60)
    monkeypatch.setattr(ticker, "start_reconcile_ticker", lambda: None)  # no thread in a test

    ticker.ReconcileTicker().after_worker_boot(broker=None, worker=None)

    assert not signing_home.exists() and not pkglist.exists()
