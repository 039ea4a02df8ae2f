"""The runner's companion on a builder host: start one job, stream its log, stop it on demand.

The SSH transport starts `python3 -m builders.remote JOB_DIR` in the versioned runner copy.
It runs `python3 -m builders.runner JOB_DIR/job.json` in a session of its own (so the whole
process tree can be signalled), copies the growing builder-live.log to standard output, and
stops the job when standard input says "cancel" or closes: a closed SSH connection must not
leave a build running on the host.

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
RUNNER_ERRORS = "runner.err"
CANCEL_COMMAND = b"cancel\n"
# The runner stops its sandbox on SIGTERM within seconds; after this it is killed outright.
STOP_GRACE_SECONDS = 20
TAIL_INTERVAL_SECONDS = 0.2
CHUNK_BYTES = 1 << 20


def start_job(job_dir: Path) -> subprocess.Popen[bytes]:
    with open(job_dir / RESULT_FILE, "wb") as out, open(job_dir / RUNNER_ERRORS, "wb") as err:
        job = subprocess.Popen(
            [sys.executable, "-m", "builders.runner", str(job_dir / JOB_FILE)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
    (job_dir / PID_FILE).write_text(f"{job.pid}\n")
    return job


def stop_job(job: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the runner cancels its build), then SIGKILL for the whole process group."""
    _signal_group(job.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        job.wait(STOP_GRACE_SECONDS)
    _signal_group(job.pid, signal.SIGKILL)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def watch_input(job: subprocess.Popen[bytes]) -> None:
    """Stop the job on "cancel" or when the transport's connection goes away."""
    for line in sys.stdin.buffer:
        if line == CANCEL_COMMAND:
            break
    if job.poll() is None:
        stop_job(job)


def stream_log(job: subprocess.Popen[bytes], log_path: Path) -> None:
    """Copy the live log to standard output until the job has ended and all is sent."""
    out = sys.stdout.buffer
    offset = 0
    while True:
        ended = job.poll() is not None
        chunk = _read_from(log_path, offset)
        if chunk:
            offset += len(chunk)
            out.write(chunk)
            out.flush()
            continue  # more may be waiting: send it before looking at the job again
        if ended:
            return
        time.sleep(TAIL_INTERVAL_SECONDS)


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with open(path, "rb") as log:
            log.seek(offset)
            return log.read(CHUNK_BYTES)
    except FileNotFoundError:
        return b""  # the runner has not opened its log yet


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python3 -m builders.remote JOB_DIR", file=sys.stderr)
        return 2
    job_dir = Path(args[0])
    job = start_job(job_dir)
    threading.Thread(target=watch_input, args=(job,), daemon=True).start()
    try:
        stream_log(job, job_dir / RESULTS_SUBDIR / LOG_NAME)
    except OSError:
        # Nobody reads the log any more (the connection broke): the job must not go on.
        stop_job(job)
    return job.wait()


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # The input watcher may still block in a read of standard input; a normal interpreter
    # exit would trip over it (a fatal error while finalizing), so leave right away.
    os._exit(code)
