"""builder-live.log: the build output, written and flushed line by line while the job runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

LOG_NAME = "builder-live.log"

# A build that prints without end must not fill the results disk; Copr's biggest real logs
# stay well below this.
LOG_LIMIT_BYTES = 256 * 1024 * 1024


class LiveLog:
    """Append-only log the portal may read (and serve) at any moment."""

    def __init__(self, path: Path, limit: int = LOG_LIMIT_BYTES) -> None:
        self.path = path
        self.limit = limit
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115 - closed by close()
        self._written = 0
        self._truncated = False
        self._copy: BinaryIO | None = None

    def write(self, data: bytes) -> None:
        """Append raw output bytes, keeping at most `limit` bytes in total."""
        if self._truncated:
            return
        room = self.limit - self._written
        if len(data) > room:
            data = data[:room] + b"\n[coprsite] log truncated: more than %d bytes\n" % self.limit
            self._truncated = True
        self._file.write(data)
        if self._copy is not None:
            self._copy.write(data)
        self._written += len(data)

    @contextmanager
    def copy_to(self, path: Path) -> Iterator[None]:
        """Also write what is logged meanwhile to `path` (mock's build.log: one step's output)."""
        with open(path, "ab", buffering=0) as copy:
            self._copy = copy
            try:
                yield
            finally:
                self._copy = None

    def info(self, message: str) -> None:
        """Append one line from the runner itself."""
        self.write(f"INFO: {message}\n".encode())

    def close(self) -> None:
        """Close the file. No fsync: the bytes are in the kernel already (unbuffered writes),
        and a task whose host crashed is built again anyway."""
        self._file.close()

    def __enter__(self) -> LiveLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
