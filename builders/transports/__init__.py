"""How a job reaches the machine that runs it: one module per kind behind one interface.

Every transport takes the same job spec (with the portal's paths) and leaves the same
result in `spec.result_dir` as `builders.runner.run_job` does on the worker itself:
builder-live.log while the job runs, then the checked RPMs, results.json and `success`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from builders.protocol import JobResult, JobSpec


class BuilderLost(Exception):
    """The builder stopped answering (network, sshd, the host itself): not the build's fault.

    The portal may run the job again on another builder. `pool_healthy` says that only
    this one disposable machine was lost: its pool still takes jobs. `before_job` says
    that the job never started (no machine could be made): it costs the task no attempt.
    """

    def __init__(
        self, reason: str, *, pool_healthy: bool = False, before_job: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.pool_healthy = pool_healthy
        self.before_job = before_job


class ArchMismatch(BuilderLost):
    """The builder cannot build an arch it is declared for: down until an operator fixes
    its pool's config; the task waits for another builder and keeps its attempts."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, before_job=True)


class BuilderRefused(Exception):
    """The builder cannot be used as configured (host key, login, Python, runner).

    Retrying does not help: an operator has to fix the pool's configuration or the host.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class JobLeft(Exception):
    """The worker stopped following a detached job it no longer holds (another worker took
    it over); the job runs on, for that other worker. Raised by `should_cancel`."""


class Transport(Protocol):
    """Run one job somewhere and leave its results in `spec.result_dir`."""

    def run(self, spec: JobSpec, *, should_cancel: Callable[[], bool]) -> JobResult:
        """Raise BuilderLost or BuilderRefused for builder problems, never for build ones."""
        ...
