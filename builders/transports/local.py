"""The local transport: the job runs in this process's host sandbox, as it always did."""

from __future__ import annotations

from collections.abc import Callable

from builders.protocol import JobResult, JobSpec
from builders.runner import run_job


class LocalTransport:
    """Runs the job in-process; the portal's paths are this host's paths."""

    def run(self, spec: JobSpec, *, should_cancel: Callable[[], bool]) -> JobResult:
        return run_job(spec, should_cancel=should_cancel)
