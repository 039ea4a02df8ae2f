"""Tests for builders/protocol.py: the JSON the portal and the runner exchange."""

from __future__ import annotations

import json

from builders.protocol import JobResult, JobSpec


def test_job_spec_round_trips_through_json() -> None:
    spec = JobSpec(
        task_id="12-fedora-43-x86_64",
        kind="rpm",
        build_id=12,
        owner="@packagers",
        project="tools",
        result_dir="/srv/results/12",
        source={"srpm_path": "/srv/srpm/tools-1-1.src.rpm"},
        chroot="fedora-43-x86_64",
        arch="x86_64",
        macros={"dist": ".fc43"},
        enable_net=True,
    )

    assert JobSpec.from_json(spec.to_json()) == spec


def test_job_spec_defaults_and_unknown_keys() -> None:
    data = {
        "task_id": "3",
        "kind": "srpm",
        "build_id": 3,
        "owner": "alice",
        "project": "p",
        "result_dir": "/r",
        "source": {"type": "link", "url": "https://example.org/p.src.rpm"},
        "added_by_a_newer_portal": 1,
    }

    spec = JobSpec.from_json(json.dumps(data))

    assert (spec.timeout, spec.max_download_bytes, spec.enable_net) == (18000, 1 << 30, False)
    assert spec.macros == {} and spec.mock_config is None


def test_job_result_round_trips_through_json() -> None:
    result = JobResult(
        state="succeeded",
        packages=[{"name": "a", "epoch": None, "version": "1", "release": "1", "arch": "noarch"}],
        files=["a-1-1.noarch.rpm"],
    )

    assert JobResult.from_json(result.to_json()) == result
    assert json.loads(result.to_json())["failure_reason"] == ""
