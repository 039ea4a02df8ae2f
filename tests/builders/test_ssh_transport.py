"""The SSH transport against real sshd hosts in network namespaces (tests/builders/ssh_helpers)."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from builders.protocol import JobResult, JobSpec
from builders.transports import ArchMismatch, BuilderLost, BuilderRefused, ssh
from builders.transports.command import CommandTransport, Machine, MachineCommands
from builders.transports.ssh import (
    ResultRejected,
    SshHost,
    SshTransport,
    builder_connection,
    check_files,
    runner_version,
)
from tests.builders.srpm_factory import make_binary_rpm, make_srpm
from tests.builders.ssh_helpers import SshTestHost
from tests.builders.test_limits import FORK_BOMB, needs_cgroups
from tests.builders.test_runner import live_log, processes_named, rpm_files, sleeping_srpm, wait_for

RpmJob = Callable[..., JobSpec]
ROOT = Path(__file__).resolve().parents[2]
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


def test_one_login_serves_every_command_of_several_jobs_and_no_login_shell_runs_them(
    ssh_hosts: Hosts, hello_srpm: Path, rpm_job: RpmJob
) -> None:
    (host,) = ssh_hosts(1)
    transport = SshTransport(host.ssh_host())

    for index in range(3):
        result = transport.run(
            rpm_job(hello_srpm, task_id=f"t{index}"), should_cancel=lambda: False
        )
        assert result.state == "succeeded", result.failure_reason
    transport.probe(keep_jobs=[])

    # One master connection, and the login shell (bash reads root's ~/.bashrc when sshd
    # runs it) started only the agent; the five commands of each job went to the agent.
    assert host.logins() == 1, host.sshd_log()
    assert host.sessions_started() == 1, host.sshd_log()
    path = builder_connection(host.ssh_host()).check_output('printf %s "$PATH"')
    assert path.decode() == ssh.AGENT_PATH  # not the PATH root's ~/.bashrc makes


def test_a_host_whose_sshd_forwards_nothing_is_refused_with_what_to_change(
    ssh_hosts: Hosts, hello_srpm: Path, rpm_job: RpmJob
) -> None:
    (host,) = ssh_hosts(1)
    host.kill_everything()
    host.start_sshd("AllowStreamLocalForwarding no\n")

    with pytest.raises(BuilderRefused, match="set AllowStreamLocalForwarding yes"):
        SshTransport(host.ssh_host()).run(rpm_job(hello_srpm), should_cancel=lambda: False)


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
    assert (outcome[0].state, outcome[0].failure_reason) == ("canceled", "canceled by the user")
    assert processes_named(marker) == []
    assert wait_for(lambda: host.processes() == [], 10), host.processes()
    assert rpm_files(result_dir) == []


def test_a_host_lost_mid_build_is_builder_lost_and_leaves_no_build(
    ssh_hosts: Hosts, tmp_path: Path, rpm_job: RpmJob, result_dir: Path
) -> None:
    (host,) = ssh_hosts(1)
    marker = f"coprsite-sleeper-{uuid.uuid4().hex}"
    outcome = run_in_thread(
        SshTransport(host.ssh_host(reconnect_seconds=5)),
        rpm_job(sleeping_srpm(tmp_path, marker)),
        lambda: False,
    )
    assert wait_for(lambda: "BUILD-STARTED" in live_log(result_dir), 60), live_log(result_dir)
    started = time.monotonic()

    host.kill_everything()

    assert wait_for(lambda: bool(outcome), 60)
    assert isinstance(outcome[0], BuilderLost), outcome
    assert "connection broke during the build and did not come back in 5 s" in outcome[0].reason
    assert time.monotonic() - started < 40
    assert wait_for(lambda: processes_named(marker) == [], 10)


TICKS = 50  # seconds of build: the link is cut for CUT_SECONDS of them
# The transport alone; tests/e2e/test_detached_jobs.py cuts a real worker's link for 62 s.
CUT_SECONDS = 35  # longer than the keepalive takes to see the link gone


def ticking_srpm(tmp_path: Path, ticks: int = TICKS) -> Path:
    """A build that prints tick-1 .. tick-TICKS a second apart: a gap or a repeat in the
    log shows a lost or a doubled piece of it, a second BUILD-STARTED a job run twice."""
    return make_srpm(
        tmp_path,
        build_script=(
            "echo BUILD-STARTED\n"
            f"for i in $(seq 1 {ticks}); do echo tick-$i; sleep 1; done\n"
            "gcc -o %{name} hello.c"
        ),
    )


def test_a_link_cut_mid_build_loses_nothing_and_runs_the_job_once(
    ssh_hosts: Hosts, tmp_path: Path, rpm_job: RpmJob, result_dir: Path
) -> None:
    (host,) = ssh_hosts(1)
    jobs: list[str] = []
    transport = SshTransport(host.ssh_host(reconnect_seconds=120))
    outcome: list[JobResult | Exception] = []

    def run() -> None:
        try:
            spec = rpm_job(ticking_srpm(tmp_path))
            outcome.append(transport.run(spec, should_cancel=lambda: False, on_job=jobs.append))
        except Exception as exc:
            outcome.append(exc)

    threading.Thread(target=run, daemon=True).start()
    assert wait_for(lambda: "tick-3\n" in live_log(result_dir), 120), live_log(result_dir)

    host.cut_link()
    time.sleep(CUT_SECONDS)
    assert not outcome, outcome  # still waiting for the host
    host.restore_link()

    assert wait_for(lambda: bool(outcome), TICKS + 60), live_log(result_dir)
    result = outcome[0]
    assert isinstance(result, JobResult) and result.state == "succeeded", (
        outcome,
        live_log(result_dir),
    )
    assert rpm_files(result_dir) == ["hello-1.0-1.fc43.src.rpm", "hello-1.0-1.fc43.x86_64.rpm"]
    log = live_log(result_dir)
    assert "Connection to host0 lost; the job runs on there" in log
    assert (
        log.splitlines().count("BUILD-STARTED") == 1
        and log.count("INFO: Task 7-fedora-43-x86_64") == 1
    )
    ticks = [line for line in log.splitlines() if line.startswith("tick-")]
    assert ticks == [f"tick-{i}" for i in range(1, TICKS + 1)]
    assert jobs == ["7-fedora-43-x86_64"]
    assert not (result_dir / ssh.OFFSET_FILE).exists()
    assert list((host.work_dir / "jobs").iterdir()) == []


def test_a_job_that_ended_while_nobody_watched_is_collected_on_reattach(
    ssh_hosts: Hosts, hello_srpm: Path, rpm_job: RpmJob, result_dir: Path
) -> None:
    (host,) = ssh_hosts(1)
    transport = SshTransport(host.ssh_host())
    connection = builder_connection(host.ssh_host())
    job_dir = f"{host.work_dir}/jobs/7-fedora-43-x86_64"
    spec = rpm_job(hello_srpm)
    # A worker that started the job and died at once: nobody follows it.
    transport.check_host(connection)
    transport.upload_job(connection, spec, job_dir)
    transport.start_job(connection, job_dir)
    transport.start_job(connection, job_dir)  # a retry, or another worker: not a second run
    assert wait_for(lambda: Path(job_dir, "exit").exists(), 120)

    result = transport.run(spec, should_cancel=lambda: False, attach=True)

    assert result.state == "succeeded", (result.failure_reason, live_log(result_dir))
    assert rpm_files(result_dir) == ["hello-1.0-1.fc43.src.rpm", "hello-1.0-1.fc43.x86_64.rpm"]
    log = live_log(result_dir)
    assert "Reattached to job 7-fedora-43-x86_64 on host0" in log
    assert log.count("INFO: Task 7-fedora-43-x86_64") == 1  # the whole log, once
    assert not Path(job_dir).exists()


def test_a_job_killed_on_the_host_is_builder_lost_for_the_job_not_the_host(
    ssh_hosts: Hosts, tmp_path: Path, rpm_job: RpmJob
) -> None:
    """As after a reboot of the host: the job and its supervisor are gone, no exit status."""
    (host,) = ssh_hosts(1)
    transport = SshTransport(host.ssh_host())
    connection = builder_connection(host.ssh_host())
    job_dir = f"{host.work_dir}/jobs/7-fedora-43-x86_64"
    transport.check_host(connection)
    spec = rpm_job(ticking_srpm(tmp_path))
    transport.upload_job(connection, spec, job_dir)
    transport.start_job(connection, job_dir)
    supervisors = processes_named(f"builders.remote\0start\0{job_dir}")
    assert len(supervisors) == 1, supervisors
    os.kill(supervisors[0], signal.SIGKILL)
    os.killpg(int(Path(job_dir, "pid").read_text()), signal.SIGKILL)

    with pytest.raises(BuilderLost, match="the job ended without a result") as lost:
        transport.run(spec, should_cancel=lambda: False, attach=True)
    assert lost.value.pool_healthy  # the host answered: only the job is lost


def test_the_host_gets_host_paths_only_never_the_portals(
    ssh_hosts: Hosts, hello_srpm: Path, rpm_job: RpmJob, result_dir: Path
) -> None:
    (host,) = ssh_hosts(1)
    transport = SshTransport(host.ssh_host())
    job_dir = f"{host.work_dir}/jobs/inspect"
    transport.upload_job(builder_connection(host.ssh_host()), rpm_job(hello_srpm), job_dir)

    sent = JobSpec.from_json(Path(job_dir, "job.json").read_text())
    assert sent.result_dir == f"{job_dir}/results"
    assert sent.source == {"srpm_path": f"{job_dir}/input/{hello_srpm.name}"}
    assert str(result_dir) not in Path(job_dir, "job.json").read_text()
    assert Path(sent.source["srpm_path"]).read_bytes() == hello_srpm.read_bytes()


def test_ssh_failures_before_the_build_are_retried(
    ssh_hosts: Hosts, hello_srpm: Path, rpm_job: RpmJob, result_dir: Path
) -> None:
    (host,) = ssh_hosts(1)
    host.kill_everything()  # sshd down: the first connection is refused
    restart = threading.Timer(1.0, host.start_sshd)
    restart.start()

    result = SshTransport(host.ssh_host()).run(rpm_job(hello_srpm), should_cancel=lambda: False)

    restart.join()
    assert result.state == "succeeded", result.failure_reason


def test_a_host_that_stays_away_is_builder_lost(
    ssh_hosts: Hosts, hello_srpm: Path, rpm_job: RpmJob, monkeypatch: pytest.MonkeyPatch
) -> None:
    (host,) = ssh_hosts(1)
    host.kill_everything()
    monkeypatch.setattr(ssh, "RETRY_PAUSE_SECONDS", 0)

    with pytest.raises(BuilderLost, match="Connection refused"):
        SshTransport(host.ssh_host()).run(rpm_job(hello_srpm), should_cancel=lambda: False)


def spec_for(kind: str = "rpm", arch: str = "x86_64") -> JobSpec:
    return JobSpec(
        task_id="1", kind=kind, build_id=1, owner="o", project="p", result_dir="", source={},
        arch=arch,
    )  # fmt: skip


def returned(tmp_path: Path, rpm: Path, **package: str) -> tuple[JobResult, Path]:
    files = tmp_path / "returned"
    files.mkdir()
    shutil.copyfile(rpm, files / rpm.name)
    header = {"name": "hello", "epoch": None, "version": "1.0", "release": "1", "arch": "x86_64"}
    return JobResult(state="succeeded", packages=[{**header, **package}], files=[rpm.name]), files


def test_returned_rpms_must_match_their_names_and_the_arch(tmp_path: Path) -> None:
    rpm = make_binary_rpm(tmp_path)  # hello-1.0-1.<host arch>.rpm
    result, files = returned(tmp_path, rpm)
    check_files(spec_for(), result, files)  # as built: accepted

    with pytest.raises(ResultRejected, match="is built for x86_64, not aarch64"):
        check_files(spec_for(arch="aarch64"), result, files)
    renamed = files / "hello-2.0-1.x86_64.rpm"
    (files / rpm.name).rename(renamed)
    lying = replace(
        result, files=[renamed.name], packages=[{**result.packages[0], "version": "2.0"}]
    )
    with pytest.raises(ResultRejected, match="hello-2.0-1.x86_64.rpm holds hello-1.0-1.x86_64.rpm"):
        check_files(spec_for(), lying, files)
    with pytest.raises(ResultRejected, match="do not match"):
        check_files(spec_for(), replace(lying, files=[]), files)
    renamed.write_bytes(b"not an rpm at all")
    with pytest.raises(ResultRejected, match="is not an RPM"):
        check_files(spec_for(), lying, files)


def test_a_host_with_older_runners_gets_this_one_and_keeps_only_the_newest(
    ssh_hosts: Hosts, hello_srpm: Path, rpm_job: RpmJob
) -> None:
    (host,) = ssh_hosts(1)
    runners = host.work_dir / "runner"
    for age, version in enumerate(["old4", "old3", "old2", "old1"]):
        (runners / version).mkdir(parents=True)
        (runners / version / "VERSION").write_text(f"{version}\n")
        stamp = time.time() - 3600 * (age + 1)
        os.utime(runners / version, (stamp, stamp))

    result = SshTransport(host.ssh_host()).run(rpm_job(hello_srpm), should_cancel=lambda: False)

    assert result.state == "succeeded", result.failure_reason
    assert sorted(path.name for path in runners.iterdir()) == sorted(
        [runner_version(), "old4", "old3"]
    )


@needs_cgroups
@pytest.mark.parametrize(
    ("script", "limits", "reason"),
    [
        (FORK_BOMB, {"processes": 64}, "process limit 64 reached"),
        (
            'python3 -c \'data = b"x" * (300 << 20); print("allocated")\'',
            {"memory_mib": 64},
            "the build exceeded the memory limit of 64 MiB",
        ),
    ],
    ids=["processes", "memory"],
)
def test_the_job_limits_hold_on_an_ssh_host_too(
    ssh_hosts: Hosts, tmp_path: Path, rpm_job: RpmJob, script: str, limits: dict, reason: str
) -> None:
    (host,) = ssh_hosts(1)
    srpm = make_srpm(tmp_path, build_script=f"{script}\ngcc -o %{{name}} hello.c")

    result = SshTransport(host.ssh_host()).run(
        rpm_job(srpm, limits=limits), should_cancel=lambda: False
    )

    assert (result.state, result.failure_reason) == ("failed", reason)


@pytest.mark.parametrize(
    ("plant", "refused"),
    [
        (lambda results: (results / "passwd").symlink_to("/etc/passwd"), "passwd"),
        (lambda results: (results / "sub").mkdir(), "sub"),
        (lambda results: (results / "x.rpm").write_bytes(b"rpm"), None),
    ],
    ids=["symlink", "directory", "plain file"],
)
def test_only_plain_files_come_back_from_a_host(
    ssh_hosts: Hosts, tmp_path: Path, plant: Callable[[Path], object], refused: str | None
) -> None:
    (host,) = ssh_hosts(1)
    transport = SshTransport(host.ssh_host())
    job_dir = host.work_dir / "jobs" / "9"
    (job_dir / "results").mkdir(parents=True)
    (job_dir / "result.json").write_text('{"state": "failed"}')
    plant(job_dir / "results")
    staging = tmp_path / "staging"
    staging.mkdir()

    connection = builder_connection(host.ssh_host())
    if refused:
        with pytest.raises(BuilderRefused, match=f"unusable file 'results/{refused}'"):
            transport.download(connection, str(job_dir), staging)
    else:
        transport.download(connection, str(job_dir), staging)

    if not refused:
        assert (staging / "results" / "x.rpm").read_bytes() == b"rpm"
        assert (staging / "result.json").read_text() == '{"state": "failed"}'
    assert not (staging / "results" / "passwd").exists()


class Recorded:
    """A command pool's MachineEvents with no portal behind it: every machine is new."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def take(self) -> None:
        return None

    def creating(self, name: str) -> None:
        self.events.append(f"creating {name}")

    def created(self, machine: Machine) -> None:
        self.events.append(f"created {machine.name}")

    def acquired(self, machine: Machine, waited: float) -> None:
        self.events.append(f"acquired {machine.name}")

    def keep(self, machine: Machine) -> bool:
        return False

    def kept_for_debugging(self, machine: Machine) -> bool:
        return False

    def deleted(self, name: str) -> None:
        self.events.append(f"deleted {name}")

    def delete_failed(self, name: str, reason: str) -> None:
        self.events.append(f"delete failed {name}")


def test_a_pool_machine_of_another_arch_than_its_pool_is_a_mismatch_not_a_lost_machine(
    tmp_path: Path, rpm_job: RpmJob, hello_srpm: Path
) -> None:
    """A vm pool's machines are all of one image: one that is not of the pool's arch means
    the pool is wrong (down with the reason, the task kept), not that this machine was lost
    (which would spend the task's attempt and let the next machine fail the same way)."""
    machines = tmp_path / "machines"
    machines.mkdir()
    script = [sys.executable, "-m", "tests.builders.netns_machine"]
    env = {"PYTHONPATH": str(ROOT), "TEST_MACHINES_DIR": str(machines)}
    env["TEST_MACHINES_LOG"] = str(tmp_path / "machines.log")
    events = Recorded()
    transport = CommandTransport(
        pool="arm",
        commands=MachineCommands(new=[*script, "new"], delete=[*script, "delete"], env=env),
        ssh_defaults=SshHost(
            "arm", "", "", "", work_dir=str(tmp_path / "work"), arches=("aarch64",)
        ),
        name="arm-7-0",
        events=events,
    )

    with pytest.raises(ArchMismatch, match="declared for aarch64 but is x86_64") as raised:
        transport.run(rpm_job(hello_srpm), should_cancel=lambda: False)

    assert raised.value.before_job and not raised.value.pool_healthy
    # Deleted all the same, its namespace with it.
    assert events.events == [
        f"{event} arm-7-0" for event in ("creating", "created", "acquired", "deleted")
    ]
    assert list(machines.iterdir()) == []


def test_a_host_must_build_every_arch_it_is_declared_for() -> None:
    x86 = {"machine": "x86_64", "rpm_arch": "x86_64"}
    ssh.check_arches(SshHost("a", "", "", "", arches=("x86_64", "i686")), **x86)
    ssh.check_arches(SshHost("a", "", "", "", arches=("i686",)), machine="x86_64", rpm_arch="i386")

    with pytest.raises(ArchMismatch, match="declared for x86_64, aarch64 but is x86_64"):
        ssh.check_arches(SshHost("a", "", "", "", arches=("x86_64", "aarch64")), **x86)
    with pytest.raises(ArchMismatch, match=r"is i386 \(rpm --eval %_arch: i386, uname -m: x86_64"):
        ssh.check_arches(
            SshHost("a", "", "", "", arches=("x86_64",)), machine="x86_64", rpm_arch="i386"
        )
