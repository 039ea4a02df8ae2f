"""manage.py rundramatiq: a worker process killed by the kernel is restarted, not left dead."""

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import wait_for
from tests.e2e.processes import RedisServer

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def children(pid: int) -> list[int]:
    """Pids whose parent is `pid` (read from /proc: the workers are not our children)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid and fields[0] not in {"Z", "X"}:
            found.append(int(stat.parent.name))
    return sorted(found)


def kill_tree(pid: int) -> None:
    for child in children(pid):
        kill_tree(child)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def running_workers(supervisor: int) -> tuple[int, list[int]] | None:
    """(dramatiq master, its two worker processes) once both are up, else None."""
    # Unsupervised, the command execs dramatiq's master itself.
    for master in [supervisor, *children(supervisor)]:
        workers = children(master)
        if len(workers) == 2:
            return master, workers
    return None


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def test_a_killed_worker_process_is_restarted(tmp_path, redis_server):
    env = {
        **os.environ,
        "VAR_DIR": str(tmp_path),
        # A broker of its own (rundramatiq refuses to start without one), so that the
        # reconcile nudges of these workers reach no other test's.
        "BROKER_URL": redis_server.url,
        "RECONCILE_SECONDS": "3600",
    }
    log = (tmp_path / "worker.log").open("w")
    supervisor = subprocess.Popen(
        [sys.executable, "manage.py", "rundramatiq", "--processes", "2", "--threads", "1"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        master, workers = wait_for(
            lambda: running_workers(supervisor.pid), timeout=90, what="two worker processes"
        )
        # The broker is down when it happens: the restarted workers wait for it like the
        # others rather than refusing to start (the broker was checked once, at start).
        redis_server.stop()
        os.kill(workers[0], signal.SIGKILL)  # what the OOM killer does to a greedy build

        def restarted():
            assert supervisor.poll() is None, (tmp_path / "worker.log").read_text()
            found = running_workers(supervisor.pid)
            return found if found and found[0] != master else None

        wait_for(restarted, timeout=90, what="the workers to be restarted")
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=60) == 0
        assert children(supervisor.pid) == []
    finally:
        kill_tree(supervisor.pid)
        supervisor.wait()
        log.close()
