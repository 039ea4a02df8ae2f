"""The job spec and job result the portal and the builder runner exchange as JSON."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, TypeVar

KIND_SRPM = "srpm"
KIND_RPM = "rpm"

STATE_SUCCEEDED = "succeeded"
STATE_FAILED = "failed"
STATE_CANCELED = "canceled"
STATES = (STATE_SUCCEEDED, STATE_FAILED, STATE_CANCELED)

_Record = TypeVar("_Record", "JobSpec", "JobResult")


def _from_dict(cls: type[_Record], data: dict[str, Any]) -> _Record:
    # Unknown keys are dropped so a newer portal can talk to an older runner and back.
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{key: value for key, value in data.items() if key in known})


@dataclass
class JobSpec:
    """One unit of builder work: the source task of a build, or one chroot's RPM task."""

    task_id: str
    kind: str
    build_id: int
    owner: str
    project: str
    result_dir: str
    source: dict[str, Any]
    chroot: str | None = None
    arch: str | None = None
    macros: dict[str, str] = field(default_factory=dict)
    enable_net: bool = False
    timeout: int = 18000
    max_download_bytes: int = 1 << 30
    mock_config: str | None = None
    # What mock's child.cfg is made of, in the names of Copr's build task record: repos,
    # buildroot_pkgs, with_opts, without_opts, isolation, modules, bootstrap, bootstrap_image.
    build_config: dict[str, Any] = field(default_factory=dict)
    # Where the runner makes the job's workspace (default: the temp dir), and a name that
    # lets the portal's reconcile tell whose workspace a leftover one was.
    workspaces_root: str | None = None
    workspace_name: str = ""
    # builders.limits.ResourceLimits as a dict: processes, memory_mib, cpu_seconds, disk_mib.
    limits: dict[str, int] = field(default_factory=dict)
    # SSH access for debugging (Copr's --no-cleanup-after): where the runner leaves the
    # job's workspace and a session.json for builders.debug_shell instead of removing it.
    # The portal sets any non-empty value; the SSH transport makes it a path on the host.
    keep_workspace: str = ""

    def to_json(self) -> str:
        """Serialize to the JSON the portal sends."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> JobSpec:
        """Parse the JSON written by `to_json`."""
        return _from_dict(cls, json.loads(text))


@dataclass
class JobResult:
    """What a finished job produced; `failure_reason` is one line a person can act on."""

    state: str
    failure_reason: str = ""
    packages: list[dict[str, Any]] = field(default_factory=list)
    srpm: dict[str, Any] | None = None
    files: list[str] = field(default_factory=list)
    # What the RPMs were built in, one line: "mock: <config>" or the host buildroot warning.
    buildroot: str = ""

    def to_json(self) -> str:
        """Serialize to the JSON the runner prints."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> JobResult:
        """Parse the JSON written by `to_json`."""
        return _from_dict(cls, json.loads(text))
