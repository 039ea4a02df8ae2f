"""A task's logs in its results directory: backend.log appends, gzip once the task is final.

Copr keeps a task's logs plain while it runs (the live log is read as it grows) and stores
them as `<name>.gz` once it has finished. backend.log still gets lines after that (a late
publishing step, an operator's action): they go into the .gz, rewritten whole.
"""

import fcntl
import gzip
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.utils import timezone

from apps.builds.models import FINAL_STATES
from apps.core.paths import project_results_dir
from builders.livelog import LOG_NAME
from builders.results import BUILD_LOG, ROOT_LOG

BACKEND_LOG = "backend.log"
# Compressed when the task is final, as Copr's backend does (`_mark_finished`).
FINISHED_LOGS = (LOG_NAME, BACKEND_LOG, BUILD_LOG, ROOT_LOG)


def log_link_name(task, name: str) -> str:
    """The file a link to the log `name` points at: `<name>.gz` once the task is final,
    as Copr's pages and monitor link (the plain URL keeps working: see static_results)."""
    return f"{name}.gz" if task.state in FINAL_STATES else name


def task_result_dir(task) -> Path:
    """results/<owner>/<dirname>/<chroot>/<build dir>/ (or srpm-builds/) of a BuildTask."""
    build = task.build
    return project_results_dir(build.project.ownername, build.project_dirname) / task.result_dir


def task_logs_finish(task) -> None:
    """Compress the logs of a task that is about to become final (see task_end).

    Before the state changes, not after: pages and APIs link to the .gz files from the
    moment they show a finished task.
    """
    if task.result_dir:
        task_logs_compress(task_result_dir(task))


@contextmanager
def logs_locked(result_dir: Path) -> Iterator[None]:
    """Serialize log writers of one task across processes (a flock on its directory).

    An append must never land in a plain backend.log that the compression is about to
    replace, nor two rewrites of the .gz lose each other's line.
    """
    fd = os.open(result_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def backend_log(result_dir: Path, message: str) -> None:
    """What the service did with the task, for operators and curious packagers."""
    stamp = timezone.now().strftime("%Y-%m-%d %H:%M:%S")
    line = f"[{stamp}] {message}\n".encode()
    with logs_locked(result_dir):
        compressed = result_dir / f"{BACKEND_LOG}.gz"
        if compressed.is_file():
            write_gzip(compressed, read_gzip(compressed) + line)
            return
        with open(result_dir / BACKEND_LOG, "ab") as log:
            log.write(line)


def task_logs_compress(result_dir: Path) -> None:
    """Replace each finished log by `<name>.gz`; idempotent, a missing directory is fine."""
    if not result_dir.is_dir():
        return  # the task never started: it has no logs
    with logs_locked(result_dir):
        for name in FINISHED_LOGS:
            plain = result_dir / name
            if not plain.is_file():
                continue
            compressed = result_dir / f"{name}.gz"
            earlier = read_gzip(compressed) if compressed.is_file() else b""
            if earlier:
                write_gzip(compressed, earlier + plain.read_bytes())
            else:
                with open(plain, "rb") as source:
                    write_gzip_from(compressed, source)
            plain.unlink()


def read_gzip(path: Path) -> bytes:
    with gzip.open(path, "rb") as source:
        return source.read()


def write_gzip(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
    with gzip.open(partial, "wb") as target:
        target.write(data)
    # Renamed into place: a reader sees the old file or the new one, never half of one.
    os.replace(partial, path)


def write_gzip_from(path: Path, source) -> None:
    partial = path.with_name(f".{path.name}.partial")
    with gzip.open(partial, "wb") as target:
        shutil.copyfileobj(source, target)
    os.replace(partial, path)


def read_log(result_dir: Path, name: str) -> str:
    """The text of a task's log, plain while it runs or compressed once it has finished."""
    plain = result_dir / name
    if plain.is_file():
        return plain.read_text(errors="replace")
    return read_gzip(result_dir / f"{name}.gz").decode(errors="replace")
