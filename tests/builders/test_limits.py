"""Tests for builders/limits.py: a build that exceeds a limit fails with that limit's name."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from builders import limits as limits_module
from builders import sandbox
from builders.failures import BuildFailure
from builders.limits import Cgroup, ResourceLimits, open_cgroup, rlimit_prefix
from builders.livelog import LiveLog
from builders.protocol import JobSpec
from builders.runner import run_job, workspaces_removed
from builders.sandbox import Watchdog, Workspace, run_sandboxed
from tests.builders.helpers import LocalServer
from tests.builders.srpm_factory import make_srpm

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="cgroups and the workspace filesystem need root"
)


def cgroups_available() -> bool:
    if os.geteuid() != 0:
        return False
    group = open_cgroup(ResourceLimits(processes=64))
    if group is None:
        return False
    group.destroy()
    return True


needs_cgroups = pytest.mark.skipif(
    not cgroups_available(), reason="this kernel or container gives the runner no cgroup"
)


def cpu_controller_available() -> bool:
    group = open_cgroup(ResourceLimits(processes=64)) if cgroups_available() else None
    if group is None:
        return False
    try:
        return group.controls_cpu()
    finally:
        group.destroy()


needs_cpu_controller = pytest.mark.skipif(
    not cpu_controller_available(), reason="the runner's cgroups have no cpu controller here"
)

# The build's own work after the hostile part, so a build that got through succeeds.
COMPILE = "gcc -o %{name} hello.c"
# Forks until the kernel refuses; each child waits, so they all count at once.
FORK_BOMB = (
    "python3 -c 'import os, sys, time\n"
    "for _ in range(200):\n"
    "    if os.fork() == 0:\n"
    "        time.sleep(3)\n"
    "        os._exit(0)\n"
    'print("made-" + "all")\''
)


def build(
    tmp_path: Path, rpm_job: Callable[..., JobSpec], script: str, **limits: int
) -> tuple[str, str, str]:
    srpm = make_srpm(tmp_path, build_script=f"{script}\n{COMPILE}")
    job = rpm_job(srpm, limits=limits)
    result = run_job(job)
    log = (Path(job.result_dir) / "builder-live.log").read_text()
    return result.state, result.failure_reason, log


@needs_cgroups
def test_a_fork_bomb_stops_at_the_process_limit(
    tmp_path: Path, rpm_job: Callable[..., JobSpec]
) -> None:
    state, reason, log = build(tmp_path, rpm_job, FORK_BOMB, processes=64)

    assert state == "failed"
    assert reason == "process limit 64 reached"
    assert "made-all" not in log
    assert "Limits: 64 processes (processes and memory by cgroup v" in log


@needs_cgroups
def test_a_memory_hog_is_stopped_at_the_memory_limit(
    tmp_path: Path, rpm_job: Callable[..., JobSpec]
) -> None:
    hog = 'python3 -c \'data = b"x" * (300 << 20); print("allocated-" + str(len(data)))\''

    state, reason, log = build(tmp_path, rpm_job, hog, memory_mib=64)

    assert state == "failed"
    assert reason == "the build exceeded the memory limit of 64 MiB"
    assert f"allocated-{300 << 20}" not in log


def test_a_cpu_loop_is_stopped_at_the_cpu_time_limit(
    tmp_path: Path, rpm_job: Callable[..., JobSpec]
) -> None:
    state, reason, log = build(tmp_path, rpm_job, "while :; do :; done", cpu_seconds=1)

    assert state == "failed"
    assert reason == "the build exceeded its CPU time limit of 1 s"
    assert "Limits: CPU time 1 s" in log


@needs_root
@pytest.mark.parametrize("place", ["/tmp", "/var/tmp", "/build"])
def test_writing_past_the_disk_limit_fails(
    tmp_path: Path, rpm_job: Callable[..., JobSpec], place: str
) -> None:
    write = f"head -c 200M /dev/zero > {place}/big && echo wrote-it"

    state, reason, log = build(tmp_path, rpm_job, write, disk_mib=64)

    assert state == "failed"
    assert reason == "disk limit of 64 MiB exceeded (workspace or /tmp)"
    assert "wrote-it" not in log


def test_a_build_within_its_limits_succeeds(
    tmp_path: Path, rpm_job: Callable[..., JobSpec], build_workdir: Path
) -> None:
    limits = {"processes": 256, "memory_mib": 512, "cpu_seconds": 60, "disk_mib": 256}

    state, reason, log = build(tmp_path, rpm_job, "echo within", **limits)

    assert state == "succeeded", reason
    assert "Limits: 256 processes, memory 512 MiB, CPU time 60 s, disk 256 MiB" in log
    # Nothing stays behind: no workspace, no mounted disk, no cgroup.
    workspaces_removed(timeout=30)  # after the result, on a thread of its own
    assert list(build_workdir.iterdir()) == []
    assert str(build_workdir) not in Path("/proc/self/mounts").read_text()


# Three processes that each spin for 1.5 s of wall clock: 3 CPU seconds where nothing holds
# them back (at most 2 on a two-CPU host), 0.3 s at a 20% quota.
BURNERS = [
    "python3",
    "-c",
    "import os, time\n"
    "end = time.monotonic() + 1.5\n"
    "children = [pid for pid in (os.fork() for _ in range(2)) if pid]\n"
    "while time.monotonic() < end: pass\n"
    "if children: [os.waitpid(pid, 0) for pid in children]\n",
]


def cpu_files(group: Cgroup) -> dict[str, str]:
    """The live group's CPU weight, quota and throttling counters, v2 or v1."""
    if "cpu" in group.directories:  # v1
        cpu = group.directories["cpu"]
        names = {"weight": "cpu.shares", "quota": "cpu.cfs_quota_us", "stat": "cpu.stat"}
    else:
        cpu = group.directories["memory"]
        names = {"weight": "cpu.weight", "quota": "cpu.max", "stat": "cpu.stat"}
    readings = {key: (cpu / name).read_text().strip() for key, name in names.items()}
    readings["used"] = str(group.cpu_seconds())
    return readings


def default_weight(group: Cgroup) -> tuple[Path, str]:
    if "cpu" in group.directories:
        return group.directories["cpu"] / "cpu.shares", "1024"
    return group.directories["memory"] / "cpu.weight", "100"


@needs_cpu_controller
def test_a_cpu_burning_job_gets_a_low_weight_and_is_held_to_its_cpu_quota(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Keep hold of the job's real cgroup so its files can be read while it runs.
    groups: list[Cgroup | None] = []
    as_set_up: list[dict[str, str]] = []

    def open_and_keep(limits: ResourceLimits) -> Cgroup | None:
        group = limits_module.open_cgroup(limits)
        groups.append(group)
        if group is not None:
            as_set_up.append(cpu_files(group))
            # With the low weight, a machine busy with other work (other test runs) gives
            # the job less than its quota, and the quota never shows: here the job gets
            # the default weight, so only the quota holds it back.
            weight_file, default = default_weight(group)
            weight_file.write_text(default)
        return group

    monkeypatch.setattr(sandbox, "open_cgroup", open_and_keep)
    readings: list[dict[str, str]] = []
    running = True

    def sample() -> None:
        while running:
            if groups and groups[0] is not None:
                with contextlib.suppress(OSError):  # removed at the end of the run
                    readings.append(cpu_files(groups[0]))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    workspace = Workspace.create()
    workspace.apply_limits(ResourceLimits(processes=64, cpu_percent=20))
    try:
        with LiveLog(tmp_path / "log") as log:
            outcome = run_sandboxed(
                BURNERS, workspace, network=False, log=log, watchdog=Watchdog(lambda: False, 60)
            )
    finally:
        running = False
        sampler.join()
        workspace.cleanup()

    assert outcome.exit_code == 0
    group = groups[0]
    assert group is not None
    if "cpu" in group.directories:  # v1
        assert (as_set_up[0]["weight"], as_set_up[0]["quota"]) == ("102", "20000")
    else:
        assert (as_set_up[0]["weight"], as_set_up[0]["quota"]) == ("10", "20000 100000")
    last = readings[-1]
    throttled = dict(line.split() for line in last["stat"].splitlines())
    assert int(throttled["nr_throttled"]) > 0, readings
    # 1.5 s of wall clock at 20% of a CPU, and a period or two of slack.
    assert float(last["used"]) < 0.6
    limits_line = (tmp_path / "log").read_text()
    assert "Limits: 64 processes, CPU 20% of one CPU (" in limits_line
    assert "CPU weight cpu." in limits_line
    assert "and the CPU quota by cgroup v" in limits_line


def test_without_a_cgroup_cpu_controller_the_job_runs_niced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A builder where the runner may make no cgroup (not root, no delegation).
    monkeypatch.setattr(sandbox, "open_cgroup", lambda limits: None)
    workspace = Workspace.create()
    workspace.apply_limits(ResourceLimits(cpu_percent=50))
    niceness = ["python3", "-c", "import os; print('niceness-' + str(os.nice(0)))"]
    try:
        with LiveLog(tmp_path / "log") as log:
            run_sandboxed(
                niceness, workspace, network=False, log=log, watchdog=Watchdog(lambda: False, 60)
            )
    finally:
        workspace.cleanup()

    log_text = (tmp_path / "log").read_text()
    assert f"niceness-{os.nice(0) + 10}" in log_text
    assert "CPU weight by nice 10, no CPU quota (no cgroup cpu controller)" in log_text


def test_limits_in_the_job_spec_are_checked() -> None:
    with pytest.raises(Exception, match="processes is not a whole number"):
        ResourceLimits.from_dict({"processes": "many"})
    assert ResourceLimits.from_dict({"memory_mib": 5, "future": 1}) == ResourceLimits(memory_mib=5)


@needs_cgroups
def test_an_empty_job_cgroup_left_by_a_dead_runner_is_removed() -> None:
    group = open_cgroup(ResourceLimits(processes=64))
    assert group is not None
    leftovers = list(group.directories.values())
    old = time.time() - 3600
    for directory in leftovers:
        os.utime(directory, (old, old))

    fresh = open_cgroup(ResourceLimits(processes=64))
    assert fresh is not None
    fresh.destroy()

    assert [directory for directory in leftovers if directory.exists()] == []


@needs_cgroups
def test_rlimit_cpu_is_a_backstop_behind_the_cgroups_total() -> None:
    # The kernel charges RLIMIT_CPU by ticks and the cgroup by the scheduler's clock: a loop
    # killed at a 1 s RLIMIT_CPU was measured at 0.997 s in its cgroup, and its failure did
    # not name the limit. With the cgroup counting, the runner's poll stops the job first.
    limits = ResourceLimits(cpu_seconds=1)
    group = open_cgroup(limits)
    assert group is not None
    try:
        with_cgroup = rlimit_prefix(limits, cgroup=group, disk_mounted=True)
    finally:
        group.destroy()

    assert with_cgroup == ["prlimit", "--cpu=2:3", "--"]
    assert rlimit_prefix(limits, cgroup=None, disk_mounted=True)[1] == "--cpu=1:2"


@needs_cgroups
def test_cpu_time_adds_up_over_the_steps_of_one_job(tmp_path: Path) -> None:
    workspace = Workspace.create()
    workspace.apply_limits(ResourceLimits(cpu_seconds=1))
    spin = [
        "python3",
        "-c",
        "import time\nend = time.process_time() + 0.7\nwhile time.process_time() < end: pass",
    ]
    try:
        with LiveLog(tmp_path / "log") as log:
            first = run_sandboxed(
                spin, workspace, network=False, log=log, watchdog=Watchdog(lambda: False, 60)
            )
            with pytest.raises(BuildFailure, match="CPU time limit of 1 s"):
                run_sandboxed(
                    spin, workspace, network=False, log=log, watchdog=Watchdog(lambda: False, 60)
                )
    finally:
        workspace.cleanup()

    assert first.exit_code == 0


@needs_root
def test_cleanup_of_a_dead_runners_workspace_unmounts_its_disk() -> None:
    left_behind = Workspace.create()
    left_behind.apply_limits(ResourceLimits(disk_mib=16))
    (left_behind.build_dir / "file").write_text("x")
    assert os.path.ismount(left_behind.build_dir)

    # What a sweep after a crash has: only the path.
    Workspace(left_behind.root).cleanup()

    assert not left_behind.root.exists()
    assert str(left_behind.root) not in Path("/proc/self/mounts").read_text()


def test_without_cgroups_memory_falls_back_to_a_per_process_limit(
    tmp_path: Path, rpm_job: Callable[..., JobSpec], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A builder where the runner may make no cgroup (not root, no delegation).
    monkeypatch.setattr(sandbox, "open_cgroup", lambda limits: None)
    hog = 'python3 -c \'data = b"x" * (300 << 20); print("allocated-" + str(len(data)))\''

    state, reason, log = build(tmp_path, rpm_job, hog, memory_mib=64)

    assert state == "failed"
    assert reason == "the build exceeded the memory limit of 64 MiB"
    assert "processes and memory by RLIMIT_NPROC/RLIMIT_AS per process (no cgroup)" in log
    assert f"allocated-{300 << 20}" not in log


def test_the_download_size_limit_keeps_its_own_reason_under_job_limits(
    http_server: LocalServer, source_job: Callable[..., JobSpec]
) -> None:
    # The download's file-size limit (SIGXFSZ) is not the job's disk limit.
    url = http_server.url("endless")
    limits = {"processes": 256, "memory_mib": 512, "cpu_seconds": 60, "disk_mib": 64}

    result = run_job(
        source_job({"type": "link", "url": url}, max_download_bytes=100_000, limits=limits)
    )

    assert result.failure_reason == f"source download failed: {url} is larger than 100000 bytes"


@needs_root
def test_each_job_disk_is_a_fresh_copy_of_a_root_only_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    templates = tmp_path / "templates"
    monkeypatch.setenv(limits_module.DISK_TEMPLATES_ENV, str(templates))
    first, second = Workspace.create(), Workspace.create()
    try:
        first.apply_limits(ResourceLimits(disk_mib=16))
        (first.build_dir / "left-by-the-first-job").write_text("x")
        second.apply_limits(ResourceLimits(disk_mib=16))

        assert first.disk_mounted and second.disk_mounted
        assert list(second.build_dir.iterdir()) == []
        stats = os.statvfs(second.build_dir)
        assert 14 * 1024 * 1024 < stats.f_blocks * stats.f_frsize <= 16 * 1024 * 1024
        (template,) = templates.iterdir()
        assert template.name == f"{limits_module.DISK_TEMPLATE_FORMAT}-16M.img"
        assert (templates.stat().st_mode & 0o777, template.stat().st_mode & 0o777) == (0o700, 0o600)
        assert (second.root / "disk.img").stat().st_mode & 0o777 == 0o600
    finally:
        first.cleanup()
        second.cleanup()


@needs_root
def test_a_template_directory_others_can_write_to_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whoever can write there could swap the template for a crafted filesystem.
    templates = tmp_path / "templates"
    templates.mkdir()
    templates.chmod(0o777)
    monkeypatch.setenv(limits_module.DISK_TEMPLATES_ENV, str(templates))
    workspace = Workspace.create()
    try:
        workspace.apply_limits(ResourceLimits(disk_mib=16))

        assert workspace.disk_mounted  # formatted for this job alone
        assert list(templates.iterdir()) == []
    finally:
        workspace.cleanup()
