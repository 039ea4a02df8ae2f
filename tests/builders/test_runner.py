"""Tests for builders/runner.py RPM tasks: real rpmbuild runs in the real sandbox."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import rpmfile

from builders.protocol import JobResult, JobSpec
from builders.runner import run_job, runs_in_sandbox, workspaces_removed
from builders.sandbox import TIMEOUT_SIGNAL_SECONDS
from tests.builders.srpm_factory import make_binary_rpm, make_srpm
from tests.builders.test_mockconfig import dnf_repos, load_mock_config

RpmJob = Callable[..., JobSpec]
REPO_ROOT = Path(__file__).resolve().parents[2]


def rpm_files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.rglob("*.rpm"))


def live_log(result_dir: Path) -> str:
    path = result_dir / "builder-live.log"
    return path.read_text(errors="replace") if path.exists() else ""


def test_successful_rebuild_writes_rpms_results_and_log(
    hello_srpm: Path, rpm_job: RpmJob, result_dir: Path, build_workdir: Path
) -> None:
    result = run_job(rpm_job(hello_srpm))

    assert result.state == "succeeded", result.failure_reason
    assert result.failure_reason == ""
    expected = ["hello-1.0-1.fc43.src.rpm", "hello-1.0-1.fc43.x86_64.rpm"]
    assert sorted(result.files) == expected
    assert rpm_files(result_dir) == expected
    assert (result_dir / "success").exists()
    results = json.loads((result_dir / "results.json").read_text())
    packages = results["packages"]
    assert packages == result.packages
    # Said once, in the result, results.json and the live log: this is no Fedora buildroot.
    assert result.buildroot.startswith("host buildroot: BuildRequires were not installed")
    assert results["buildroot"] == result.buildroot
    assert sorted((p["name"], p["version"], p["release"], p["arch"]) for p in packages) == [
        ("hello", "1.0", "1.fc43", "src"),
        ("hello", "1.0", "1.fc43", "x86_64"),
    ]
    log = live_log(result_dir)
    assert f"INFO: {result.buildroot}\n" in log
    assert "+ gcc -o hello hello.c" in log
    assert "INFO: Finished: succeeded" in log
    # The workspace is gone once the job is done.
    workspaces_removed(timeout=30)  # after the result, on a thread of its own
    assert list(build_workdir.iterdir()) == []


def test_the_built_program_works_and_carries_the_copr_macros(
    tmp_path: Path, rpm_job: RpmJob, result_dir: Path
) -> None:
    srpm = make_srpm(
        tmp_path,
        build_script=(
            'echo "MACROS=%{copr_username}/%{copr_projectname} tag=%{buildtag} dist=%{dist}"\n'
            "gcc -o %{name} hello.c"
        ),
    )

    result = run_job(rpm_job(srpm, build_id=42))

    assert result.state == "succeeded", result.failure_reason
    assert "MACROS=alice/hello-project tag=.copr42 dist=.fc43" in live_log(result_dir)
    binary = result_dir / "hello-1.0-1.fc43.x86_64.rpm"
    vendor = subprocess.run(
        ["rpm", "-qp", "--qf", "%{VENDOR}", str(binary)], capture_output=True, text=True
    )
    assert vendor.stdout == "coprsite alice/hello-project"
    # The packaged program is a real executable for this machine.
    program = tmp_path / "hello-from-rpm"
    with rpmfile.open(binary) as package:
        program.write_bytes(package.extractfile("./usr/bin/hello").read())
    program.chmod(0o755)
    hello = subprocess.run([program], capture_output=True, text=True)
    assert hello.stdout == "hello\n"


def test_build_failure_names_the_stage_and_the_error(
    tmp_path: Path, rpm_job: RpmJob, result_dir: Path
) -> None:
    srpm = make_srpm(
        tmp_path,
        build_script='echo "int broken = ;" > broken.c\ngcc -c broken.c\ngcc -o %{name} hello.c',
    )

    result = run_job(rpm_job(srpm))

    assert result.state == "failed"
    assert result.failure_reason.startswith("%build failed: broken.c:1:14: error: expected")
    assert result.buildroot.startswith("host buildroot:")  # a failed build says it too
    assert len(result.failure_reason) <= 200
    assert "\n" not in result.failure_reason
    assert rpm_files(result_dir) == []
    assert not (result_dir / "success").exists()
    assert not (result_dir / "results.json").exists()
    assert "error: Bad exit status" in live_log(result_dir)


def test_exclusive_arch_elsewhere_fails_with_rpmbuilds_message(
    tmp_path: Path, rpm_job: RpmJob, result_dir: Path
) -> None:
    srpm = make_srpm(tmp_path, exclusive_arch=["s390x"])

    result = run_job(rpm_job(srpm))

    assert result.state == "failed"
    assert result.failure_reason == (
        "rpmbuild failed (exit 1): Architecture is not included: x86_64"
    )


def test_an_arch_this_host_cannot_build_is_refused(hello_srpm: Path, rpm_job: RpmJob) -> None:
    result = run_job(rpm_job(hello_srpm, chroot="fedora-43-aarch64", arch="aarch64"))

    assert result.state == "failed"
    assert result.failure_reason == (
        "this builder cannot build aarch64 packages: it runs on x86_64"
    )


def test_a_binary_rpm_as_input_is_refused(
    tmp_path: Path, rpm_job: RpmJob, result_dir: Path
) -> None:
    rpm = make_binary_rpm(tmp_path)

    result = run_job(rpm_job(rpm))

    assert result.state == "failed"
    assert result.failure_reason == (
        f"not a source RPM: {rpm.name} is a binary RPM, not a source RPM"
    )
    assert "INFO: Finished: failed: not a source RPM" in live_log(result_dir)


def test_build_requires_are_reported_as_not_checked_without_rpm_database(
    tmp_path: Path, rpm_job: RpmJob, result_dir: Path
) -> None:
    srpm = make_srpm(tmp_path, build_requires=["gcc", "make >= 4"])
    # This Debian host's rpm database is empty; the test is about that situation.
    assert subprocess.run(["rpm", "-qa"], capture_output=True, text=True).stdout == ""

    result = run_job(rpm_job(srpm))

    assert result.state == "succeeded", result.failure_reason
    assert (
        "INFO: BuildRequires were NOT checked: this builder has no RPM database "
        "(host buildroot). Required: gcc, make >= 4\n"
    ) in live_log(result_dir)
    assert "--nodeps" in live_log(result_dir)


def test_build_requires_are_checked_when_the_builder_has_an_rpm_database(
    tmp_path: Path,
    rpm_job: RpmJob,
    result_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    readable_tmp: Path,
) -> None:
    # rpm on Debian keeps its database in ~/.rpmdb: give the runner a HOME whose database
    # holds one package, "provider" 2.0, recorded (not installed) with --justdb.
    home = readable_tmp
    environment = {**os.environ, "HOME": str(home)}
    provider = make_binary_rpm(tmp_path, name="provider", version="2.0")
    subprocess.run(["rpm", "--initdb"], env=environment, check=True)
    subprocess.run(
        ["rpm", "-i", "--justdb", "--nodeps", str(provider)],
        env=environment,
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("HOME", str(home))
    needy = make_srpm(
        tmp_path,
        name="needy",
        build_requires=["provider >= 1.5", "provider < 2", "coprsite-not-installed"],
        build_script="printf '#!/bin/sh\\n' > %{name}",
    )
    content = make_srpm(
        tmp_path,
        name="content",
        build_requires=["provider >= 1.5"],
        build_script="printf '#!/bin/sh\\n' > %{name}",
    )

    missing = run_job(rpm_job(needy))

    assert missing.state == "failed"
    assert missing.failure_reason == (
        "missing build dependencies: coprsite-not-installed, provider < 2"
    )
    assert rpm_files(result_dir) == []
    assert "BuildRequires are checked against the RPM database" in live_log(result_dir)

    satisfied = run_job(rpm_job(content, result_dir=str(tmp_path / "content-results")))

    assert satisfied.state == "succeeded", satisfied.failure_reason


def wait_for(predicate: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def processes_named(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def sleeping_srpm(tmp_path: Path, marker: str) -> Path:
    # A detached sleeper in its own session plus one in the foreground: cancel must end
    # both, and the markers let the test look for survivors in /proc.
    return make_srpm(
        tmp_path,
        build_script=(
            f"setsid bash -c 'exec -a {marker}-detached sleep 600' &\n"
            "echo BUILD-STARTED\n"
            f"bash -c 'exec -a {marker} sleep 600'"
        ),
    )


def run_in_thread(spec: JobSpec, should_cancel: Callable[[], bool]) -> list[JobResult]:
    results: list[JobResult] = []
    thread = threading.Thread(
        target=lambda: results.append(run_job(spec, should_cancel=should_cancel)), daemon=True
    )
    thread.start()
    return results


def test_cancel_stops_the_build_within_seconds(
    tmp_path: Path, rpm_job: RpmJob, result_dir: Path, build_workdir: Path
) -> None:
    marker = f"coprsite-sleeper-{uuid.uuid4().hex}"
    cancel = threading.Event()
    results = run_in_thread(rpm_job(sleeping_srpm(tmp_path, marker)), cancel.is_set)

    # The live log shows the build's output while it runs.
    assert wait_for(lambda: "BUILD-STARTED" in live_log(result_dir), 30)
    assert wait_for(lambda: len(processes_named(marker)) == 2, 10)
    cancel.set()
    canceled_at = time.monotonic()
    assert wait_for(lambda: bool(results), 10)

    assert time.monotonic() - canceled_at < 5
    assert (results[0].state, results[0].failure_reason) == ("canceled", "canceled by the user")
    assert wait_for(lambda: processes_named(marker) == [], 5)
    assert rpm_files(result_dir) == []
    assert not (result_dir / "success").exists()
    workspaces_removed(timeout=30)  # after the result, on a thread of its own
    assert list(build_workdir.iterdir()) == []
    assert "INFO: Finished: canceled: canceled by the user" in live_log(result_dir)


def test_time_limit_kills_the_build(tmp_path: Path, rpm_job: RpmJob, result_dir: Path) -> None:
    marker = f"coprsite-sleeper-{uuid.uuid4().hex}"
    started = time.monotonic()

    result = run_job(rpm_job(sleeping_srpm(tmp_path, marker), timeout=3))

    # INT, then TERM 10 s later: on a loaded CI machine the build did not always end at INT
    # (2026-12-07), and Copr's builders allow the same.
    assert time.monotonic() - started < 3 + TIMEOUT_SIGNAL_SECONDS + 5
    assert (result.state, result.failure_reason) == ("failed", "build timed out after 3 s")
    assert wait_for(lambda: processes_named(marker) == [], 5)
    assert rpm_files(result_dir) == []
    # Copr's line, which scripts grep for.
    assert " !! Copr timeout => sending INT\n" in live_log(result_dir)


def test_the_spec_names_the_workspace_and_a_timed_out_build_leaves_none(
    tmp_path: Path, rpm_job: RpmJob, readable_tmp: Path, build_workdir: Path
) -> None:
    marker = f"coprsite-sleeper-{uuid.uuid4().hex}"
    spec = rpm_job(
        sleeping_srpm(tmp_path, marker),
        timeout=6,
        workspaces_root=str(readable_tmp),
        workspace_name="task7.0",
    )
    seen: list[str] = []

    def workspace_made() -> bool:
        seen.extend(os.listdir(readable_tmp))
        return bool(seen)

    watching = threading.Thread(target=wait_for, args=(workspace_made, 6))
    watching.start()

    result = run_job(spec)

    watching.join()
    assert result.failure_reason == "build timed out after 6 s"
    assert [name.rsplit("-", 1)[0] for name in seen] == ["coprsite-build-task7.0"]
    workspaces_removed(timeout=30)  # after the result, on a thread of its own
    assert os.listdir(readable_tmp) == [] and os.listdir(build_workdir) == []


def test_a_new_attempt_clears_the_old_one_but_keeps_its_log(
    tmp_path: Path, rpm_job: RpmJob, result_dir: Path
) -> None:
    (result_dir / "hello-0.9-1.fc43.x86_64.rpm").write_bytes(b"old")
    (result_dir / "success").touch()
    (result_dir / "results.json").write_text("{}")
    (result_dir / "builder-live.log").write_text("the first attempt\n")
    broken = make_srpm(tmp_path, build_script="exit 3")

    result = run_job(rpm_job(broken))

    assert result.state == "failed"
    assert result.failure_reason == "%build failed: the script exited with an error"
    assert rpm_files(result_dir) == []
    assert sorted(path.name for path in result_dir.iterdir()) == [
        "build.log",
        "builder-live.log",
        "configs.tar.gz",
        "hello.spec",
        "prev_build_backup",
        "root.log",
    ]
    assert "exit 3" in (result_dir / "build.log").read_text()  # a failed build's log too
    backup = result_dir / "prev_build_backup" / "builder-live.log"
    assert backup.read_text() == "the first attempt\n"


def test_outputs_pointing_outside_the_workspace_are_not_taken(
    tmp_path: Path, rpm_job: RpmJob, result_dir: Path
) -> None:
    # A hostile build plants a symlink to the host's shadow file, a FIFO (which would
    # block a naive open) and a symlinked directory where the runner collects RPMs.
    srpm = make_srpm(
        tmp_path,
        build_script=(
            "gcc -o %{name} hello.c\n"
            "mkdir -p %{_rpmdir}/x86_64\n"
            "ln -s /etc/shadow %{_rpmdir}/x86_64/shadow.rpm\n"
            "mkfifo %{_rpmdir}/x86_64/fifo.rpm\n"
            "ln -s /etc %{_rpmdir}/etc"
        ),
    )

    result = run_job(rpm_job(srpm))

    assert result.state == "succeeded", result.failure_reason
    assert sorted(result.files) == ["hello-1.0-1.fc43.src.rpm", "hello-1.0-1.fc43.x86_64.rpm"]
    assert rpm_files(result_dir) == sorted(result.files)


def installed_runner(directory: Path) -> Path:
    """The runner as a builder host installs it, for the system python: the builders package
    and its one dependency (rpmfile), readable by the user that runs it. Not the checkout,
    which may sit in a directory only root can enter (/root, a `mktemp -d`)."""
    target = directory / "runner"
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO_ROOT / "builders", target / "builders", ignore=skip)
    shutil.copytree(Path(rpmfile.__file__).parent, target / "rpmfile", ignore=skip)
    for path in [target, *target.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target


def test_command_line_runs_a_job_without_root(hello_srpm: Path, readable_tmp: Path) -> None:
    # The runner as an ordinary user: no setpriv, bwrap makes its own user namespace.
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user for this test")
    shared = readable_tmp
    work = shared / "work"
    results = shared / "results"
    for directory in (work, results):
        directory.mkdir()
        os.chown(directory, 65534, 65534)
    srpm = shared / hello_srpm.name
    srpm.write_bytes(hello_srpm.read_bytes())
    srpm.chmod(0o644)
    spec = JobSpec(
        task_id="9-fedora-43-x86_64",
        kind="rpm",
        build_id=9,
        owner="bob",
        project="cli",
        result_dir=str(results),
        source={"srpm_path": str(srpm)},
        chroot="fedora-43-x86_64",
        arch="x86_64",
        macros={"dist": ".fc43"},
    )
    job_file = shared / "job.json"
    job_file.write_text(spec.to_json())
    job_file.chmod(0o644)

    completed = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            "/usr/bin/python3",
            "-m",
            "builders.runner",
            str(job_file),
        ],
        cwd=installed_runner(shared),
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": "/nonexistent",
            "PYTHONDONTWRITEBYTECODE": "1",
            "COPRSITE_BUILD_WORKDIR": str(work),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )

    result = JobResult.from_json(completed.stdout)
    assert result.state == "succeeded", (result.failure_reason, completed.stderr)
    assert rpm_files(results) == ["hello-1.0-1.fc43.src.rpm", "hello-1.0-1.fc43.x86_64.rpm"]
    assert list(work.iterdir()) == []


@pytest.mark.skipif(
    shutil.which("mock") is None,
    reason="mock is not installed on this builder (Debian host): the mock path is untested here",
)
def test_mock_config_uses_mock_when_the_builder_has_it(
    hello_srpm: Path, rpm_job: RpmJob, result_dir: Path
) -> None:
    result = run_job(rpm_job(hello_srpm, mock_config="fedora-rawhide-x86_64", macros={}))

    assert result.state == "succeeded", result.failure_reason
    assert "/configs/child.cfg --rebuild" in live_log(result_dir)
    assert any(package["arch"] == "x86_64" for package in result.packages)


BUILD_CONFIG = {
    "repos": [
        {"id": "copr_base", "name": "Copr repository",
         "baseurl": "http://copr.example.org/results/alice/hello-project/fedora-43-x86_64/"},
        {"id": "copr_bob_lib", "name": "Additional repo copr_bob_lib",
         "baseurl": "http://copr.example.org/results/bob/lib/fedora-43-x86_64/",
         "module_hotfixes": True},
    ],
    "with_opts": ["docs"],
    "isolation": "simple",
    "bootstrap": "off",
}  # fmt: skip


def configs_archive(result_dir: Path) -> dict[str, str]:
    with tarfile.open(result_dir / "configs.tar.gz") as archive:
        return {
            member.name: archive.extractfile(member).read().decode()
            for member in archive.getmembers()
        }


def test_configs_archive_holds_the_child_cfg_of_the_build(
    hello_srpm: Path, rpm_job: RpmJob, result_dir: Path
) -> None:
    result = run_job(rpm_job(hello_srpm, mock_config="fedora-43-x86_64", build_config=BUILD_CONFIG))

    assert result.state == "succeeded", result.failure_reason
    configs = configs_archive(result_dir)
    assert sorted(configs) == [
        "configs/buildroot.macros", "configs/child.cfg", "configs/job.macros",
        "configs/rpmbuild.cmdline",
    ]  # fmt: skip
    config_opts, included = load_mock_config(configs["configs/child.cfg"])
    assert included == ["/etc/mock/fedora-43-x86_64.cfg"]
    assert config_opts["isolation"] == "simple" and config_opts["use_bootstrap"] is False
    assert config_opts["macros"]["%buildtag"] == ".copr7"
    assert dnf_repos(config_opts)["copr_bob_lib"]["module_hotfixes"] == "1"


FAKE_MOCK = """#!{python}
# Stands in for mock on a builder without it: says how it was called, and fails.
import json, pathlib, sys
args = sys.argv[1:]
config = pathlib.Path(args[args.index("-r") + 1]).read_text()
results = pathlib.Path(args[args.index("--resultdir") + 1])
(results / "root.log").write_text(json.dumps({{"args": args, "config": config}}))
sys.exit(1)
"""


def test_the_mock_path_runs_mock_with_the_child_cfg(
    hello_srpm: Path,
    rpm_job: RpmJob,
    result_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The host has no mock: a stand-in records what the runner hands to it.
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "mock").write_text(FAKE_MOCK.format(python=sys.executable))
    (tools / "mock").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")

    result = run_job(rpm_job(hello_srpm, mock_config="fedora-43-x86_64", build_config=BUILD_CONFIG))

    assert result.state == "failed" and result.buildroot == "mock: fedora-43-x86_64"
    call = json.loads((result_dir / "root.log").read_text())
    args = call["args"]
    assert args[0] == "-r" and args[1].endswith("/configs/child.cfg")
    assert args[2] == "--rebuild" and args[-2:] == ["--with", "docs"]
    # mock read the same child.cfg that configs.tar.gz keeps.
    assert configs_archive(result_dir)["configs/child.cfg"] == call["config"]
    config_opts, included = load_mock_config(call["config"])
    assert included == ["/etc/mock/fedora-43-x86_64.cfg"]
    assert config_opts["isolation"] == "simple"
    assert dnf_repos(config_opts).sections()[-2:] == ["copr_base", "copr_bob_lib"]


@pytest.mark.parametrize(
    ("kind", "source", "sandboxed"),
    [
        ("srpm", {"type": "upload", "path": "/uploads/hello-1.0-1.src.rpm"}, False),
        ("srpm", {"type": "upload", "path": "/uploads/hello.spec"}, True),
        ("srpm", {"type": "link", "url": "https://example.org/hello-1.0-1.src.rpm"}, True),
        ("srpm", {"type": "scm", "clone_url": "https://example.org/hello.git"}, True),
        ("rpm", {"srpm_path": "/results/hello-1.0-1.src.rpm"}, True),
    ],
)
def test_only_jobs_that_run_something_in_the_sandbox_get_its_limits(
    kind: str, source: dict, sandboxed: bool
) -> None:
    spec = JobSpec(
        task_id="1", kind=kind, build_id=1, owner="bob", project="p", result_dir="/r", source=source
    )
    assert runs_in_sandbox(spec) is sandboxed
