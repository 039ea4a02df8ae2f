"""The runner's companion on a builder host: jobs that outlive the connection that started them.

The SSH transport runs, in the versioned runner copy:

    python3 -m builders.remote start JOB_DIR         start the job once, detached, and return
    python3 -m builders.remote tail JOB_DIR OFFSET   the live log from byte OFFSET until the
                                                     job has ended; "cancel" on standard input
                                                     stops the job
    python3 -m builders.remote cancel JOB_DIR        stop the job (SIGTERM, then SIGKILL)

`start` leaves a supervisor in a session of its own, a child of no connection, worker or
agent: it runs `python3 -m builders.runner JOB_DIR/job.json` (in its own process group, so
the whole tree can be signalled) and writes the runner's exit status to JOB_DIR/exit when
it ends. A lost connection or a dead worker ends only a `tail`; any worker may tail the job
again from where its copy of the log stops, or collect the results of a job that ended
while nobody watched. The runner's own time limit (the job spec's timeout) still holds.

JOB_DIR/started is made once (O_EXCL): a job directory runs its job at most once.
JOB_DIR/result.json gets the runner's JobResult; JOB_DIR/pid the job's process group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from builders.livelog import LOG_NAME

RESULTS_SUBDIR = "results"
JOB_FILE = "job.json"
RESULT_FILE = "result.json"
PID_FILE = "pid"
STARTED_FILE = "started"
EXIT_FILE = "exit"
RUNNER_ERRORS = "runner.err"
CANCEL_COMMAND = b"cancel\n"
# The runner stops its sandbox on SIGTERM within seconds; after this it is killed outright.
STOP_GRACE_SECONDS = 20
TAIL_INTERVAL_SECONDS = 0.2
CHUNK_BYTES = 1 << 20
# How long `start` waits for the supervisor to say the runner runs.
START_WAIT_SECONDS = 30
# Statuses the transport reads: no job directory to start; a job that ended without its
# exit status (the host rebooted, somebody killed it) or whose directory went.
JOB_MISSING = 3
JOB_GONE = 4


class JobGone(Exception):
    """The job can no longer end with a result."""


def start(job_dir: Path) -> str:
    """Start the job unless it was started already; "started" or "already started"."""
    if not (job_dir / JOB_FILE).is_file():
        raise JobGone(f"no job in {job_dir}")
    try:
        os.close(os.open(job_dir / STARTED_FILE, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        return "already started"
    if os.fork() == 0:
        # The supervisor: no terminal, no pipes of the command that started it, its own
        # session, so that nothing reaching the agent's command reaches it.
        os.setsid()
        if os.fork():
            os._exit(0)
        _detach_stdio()
        os._exit(supervise(job_dir))
    os.wait()
    deadline = time.monotonic() + START_WAIT_SECONDS
    while not (job_dir / PID_FILE).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return "started"


def _detach_stdio() -> None:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def supervise(job_dir: Path) -> int:
    """Run the runner and write its exit status to JOB_DIR/exit (atomically)."""
    with open(job_dir / RESULT_FILE, "wb") as out, open(job_dir / RUNNER_ERRORS, "wb") as err:
        job = subprocess.Popen(
            [sys.executable, "-m", "builders.runner", str(job_dir / JOB_FILE)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
    pid_file = job_dir / PID_FILE
    pid_file.with_suffix(".new").write_text(f"{job.pid}\n")
    pid_file.with_suffix(".new").rename(pid_file)
    status = job.wait()
    exit_file = job_dir / EXIT_FILE
    exit_file.with_suffix(".new").write_text(f"{status}\n")
    exit_file.with_suffix(".new").rename(exit_file)
    return 0


def ended(job_dir: Path) -> bool:
    return (job_dir / EXIT_FILE).exists()


def cancel(job_dir: Path) -> None:
    """SIGTERM (the runner cancels its build), then SIGKILL for the whole process group."""
    try:
        pgid = int((job_dir / PID_FILE).read_text())
    except (OSError, ValueError):
        return  # never started, or gone with its directory
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while not ended(job_dir) and time.monotonic() < deadline:
        time.sleep(TAIL_INTERVAL_SECONDS)
    _signal_group(pgid, signal.SIGKILL)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def watch_input(job_dir: Path) -> None:
    """Stop the job on "cancel"; input that closes (the connection went) leaves it running."""
    for line in sys.stdin.buffer:
        if line == CANCEL_COMMAND:
            cancel(job_dir)
            return


def tail(job_dir: Path, offset: int) -> None:
    """Copy the live log from `offset` to standard output until the job has ended and all
    is sent."""
    out = sys.stdout.buffer
    log_path = job_dir / RESULTS_SUBDIR / LOG_NAME
    last_look = time.monotonic()
    while True:
        done = ended(job_dir)
        if not done and time.monotonic() - last_look > GONE_CHECK_SECONDS:
            check_alive(job_dir)
            last_look = time.monotonic()
        chunk = _read_from(log_path, offset)
        if chunk:
            offset += len(chunk)
            out.write(chunk)
            out.flush()
            continue  # more may be waiting: send it before looking at the job again
        if done:
            return
        time.sleep(TAIL_INTERVAL_SECONDS)


GONE_CHECK_SECONDS = 5


def check_alive(job_dir: Path) -> None:
    """JobGone when the job's directory went or its process group ended without an exit
    status (the supervisor writes it right after: look twice)."""
    for _ in range(2):
        try:
            os.killpg(int((job_dir / PID_FILE).read_text()), 0)
            return
        except FileNotFoundError:
            if not (job_dir / STARTED_FILE).exists():
                raise JobGone(f"{job_dir} is gone") from None
            return  # started a moment ago: the supervisor writes the pid file next
        except (ProcessLookupError, ValueError):
            if ended(job_dir):
                return
        time.sleep(1)
    raise JobGone(f"the job in {job_dir} ended without an exit status")


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with open(path, "rb") as log:
            log.seek(offset)
            return log.read(CHUNK_BYTES)
    except FileNotFoundError:
        return b""  # the runner has not opened its log yet


USAGE = "usage: python3 -m builders.remote start|cancel JOB_DIR | tail JOB_DIR OFFSET"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command, operands = (args[0], args[1:]) if args else ("", [])
    if command == "start" and len(operands) == 1:
        try:
            print(start(Path(operands[0])))
        except JobGone as gone:
            print(gone, file=sys.stderr)
            return JOB_MISSING
        return 0
    if command == "cancel" and len(operands) == 1:
        cancel(Path(operands[0]))
        return 0
    if command == "tail" and len(operands) == 2 and operands[1].isdigit():
        job_dir = Path(operands[0])
        threading.Thread(target=watch_input, args=(job_dir,), daemon=True).start()
        try:
            tail(job_dir, int(operands[1]))
        except JobGone as gone:
            print(gone, file=sys.stderr)
            return JOB_GONE
        except OSError:
            return 1  # nobody reads any more (the connection broke); the job goes on
        return 0
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    code = main()
    with contextlib.suppress(OSError):
        sys.stdout.flush()
    # The input watcher may still block in a read of standard input; a normal interpreter
    # exit would trip over it (a fatal error while finalizing), so leave right away.
    os._exit(code)
