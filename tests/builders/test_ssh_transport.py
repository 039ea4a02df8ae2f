"""The SSH transport against real sshd hosts in network namespaces (tests/builders/ssh_helpers)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from builders.protocol import JobResult, JobSpec
from builders.transports import BuilderLost, BuilderRefused
from builders.transports.ssh import SshTransport, runner_version
from tests.builders.ssh_helpers import SshTestHost
from tests.builders.test_runner import live_log, processes_named, rpm_files, sleeping_srpm, wait_for

RpmJob = Callable[..., JobSpec]
Hosts = Callable[[int], list[SshTestHost]]


def run_in_thread(
    transport: SshTransport, spec: JobSpec, should_cancel: Callable[[], bool]
) -> list[JobResult | Exception]:
    outcome: list[JobResult | Exception] = []

    def run() -> None:
        try:
            outcome.append(transport.run(spec, should_cancel=should_cancel))
        except Exception as exc:
            outcome.append(exc)

    threading.Thread(target=run, daemon=True).start()
    return outcome


def test_a_job_runs_on_the_host_and_its_checked_results_come_back(
    ssh_hosts: Hosts, hello_srpm: Path, rpm_job: RpmJob, result_dir: Path
) -> None:
    (host,) = ssh_hosts(1)

    result = SshTransport(host.ssh_host()).run(rpm_job(hello_srpm), should_cancel=lambda: False)

    assert result.state == "succeeded", (result.failure_reason, live_log(result_dir))
    assert rpm_files(result_dir) == ["hello-1.0-1.fc43.src.rpm", "hello-1.0-1.fc43.x86_64.rpm"]
    assert (result_dir / "success").exists() and (result_dir / "results.json").exists()
    log = live_log(result_dir)
    assert f"Builder host host0 ({host.address}), over SSH" in log
    assert "INFO: Finished: succeeded" in log  # the runner's own lines, streamed back
    # The versioned runner copy stays for the next job; the job directory does not.
    assert (host.work_dir / "runner" / runner_version() / "VERSION").read_text().strip() == (
        runner_version()
    )
    assert list((host.work_dir / "jobs").iterdir()) == []


def test_an_unknown_host_key_is_refused_not_accepted(
    ssh_hosts: Hosts, hello_srpm: Path, rpm_job: RpmJob, tmp_path: Path
) -> None:
    host, other = ssh_hosts(2)
    transport = SshTransport(host.ssh_host(known_host_key=other.host_public_key))

    with pytest.raises(BuilderRefused, match="SSH host key is not the one the pool knows"):
        transport.run(rpm_job(hello_srpm), should_cancel=lambda: False)
    assert not (host.work_dir / "runner").exists()  # nothing ran on the host


def test_a_host_that_refuses_the_key_fails_with_the_reason(
    ssh_hosts: Hosts, hello_srpm: Path, rpm_job: RpmJob
) -> None:
    host, other = ssh_hosts(2)
    transport = SshTransport(host.ssh_host(key_path=str(other.client_key)))

    with pytest.raises(BuilderRefused, match="host0 refused the pool's SSH key"):
        transport.run(rpm_job(hello_srpm), should_cancel=lambda: False)


def test_cancel_kills_the_remote_process_tree(
    ssh_hosts: Hosts, tmp_path: Path, rpm_job: RpmJob, result_dir: Path
) -> None:
    (host,) = ssh_hosts(1)
    marker = f"coprsite-sleeper-{uuid.uuid4().hex}"
    cancel = threading.Event()
    outcome = run_in_thread(
        SshTransport(host.ssh_host()), rpm_job(sleeping_srpm(tmp_path, marker)), cancel.is_set
    )

    assert wait_for(lambda: "BUILD-STARTED" in live_log(result_dir), 60), live_log(result_dir)
    assert wait_for(lambda: len(processes_named(marker)) == 2, 10)
    cancel.set()

    assert wait_for(lambda: bool(outcome), 30)
    assert outcome[0] == JobResult(state="canceled", failure_reason="canceled by the user")
    assert processes_named(marker) == []
    assert wait_for(lambda: host.processes() == [], 10), host.processes()
    assert rpm_files(result_dir) == []


def test_a_host_lost_mid_build_is_builder_lost_and_leaves_no_build(
    ssh_hosts: Hosts, tmp_path: Path, rpm_job: RpmJob, result_dir: Path
) -> None:
    (host,) = ssh_hosts(1)
    marker = f"coprsite-sleeper-{uuid.uuid4().hex}"
    outcome = run_in_thread(
        SshTransport(host.ssh_host()), rpm_job(sleeping_srpm(tmp_path, marker)), lambda: False
    )
    assert wait_for(lambda: "BUILD-STARTED" in live_log(result_dir), 60), live_log(result_dir)
    started = time.monotonic()

    host.kill_everything()

    assert wait_for(lambda: bool(outcome), 60)
    assert isinstance(outcome[0], BuilderLost), outcome
    assert "connection broke during the build" in outcome[0].reason
    assert time.monotonic() - started < 40
    assert wait_for(lambda: processes_named(marker) == [], 10)
