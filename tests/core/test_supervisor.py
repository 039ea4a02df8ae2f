"""apps/core/supervisor.py with real child processes: restarts with backoff, gives up on
statuses no restart can cure, stops on SIGTERM."""

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUPERVISE = (
    "import sys; from apps.core.supervisor import Supervisor; "
    "sys.exit(Supervisor(sys.argv[1:]).run())"
)


def supervise(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", SUPERVISE, *command], cwd=ROOT, timeout=60, capture_output=True
    )


def test_a_child_that_keeps_dying_is_restarted_with_growing_delays(tmp_path):
    starts = tmp_path / "starts"
    # Dies at once twice; the third run asks the supervisor to stop (as systemd would).
    child = (
        f"date +%s.%N >> {starts}; "
        f'if [ "$(wc -l < {starts})" -ge 3 ]; then kill -TERM $PPID; sleep 5; fi; exit 1'
    )
    supervise("sh", "-c", child)
    times = [float(line) for line in starts.read_text().split()]
    assert len(times) == 3
    first_delay, second_delay = times[1] - times[0], times[2] - times[1]
    assert 1 <= first_delay < 2 <= second_delay < 4


def test_a_bad_command_line_is_not_restarted(tmp_path):
    started = time.monotonic()
    finished = supervise("sh", "-c", f"echo run >> {tmp_path / 'runs'}; exit 2")
    assert finished.returncode == 2
    assert (tmp_path / "runs").read_text() == "run\n"
    assert time.monotonic() - started < 10
