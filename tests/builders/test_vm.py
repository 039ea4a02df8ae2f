"""Disposable QEMU builder VMs (builders/vm): a real image, real boots, real builds inside.

The base image is built once per machine (and cached, also between CI runs) by the same
operator command docs/operations.md names (VM pools); each test boots its own VMs from it
under its tmp_path.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from builders.protocol import JobResult, JobSpec
from builders.transports import BuilderLost
from builders.transports.ssh import SshHost, SshTransport
from builders.vm.image import INITRD_FILE, KERNEL_FILE, ROOT_FILE, is_complete
from builders.vm.machine import MachineFiles, qemu_pids
from tests.builders.test_runner import live_log, rpm_files, sleeping_srpm, wait_for
from tests.builders.vm_helpers import (
    BOOT_TIMEOUT,
    IMAGE_CACHE,
    REPO_ROOT,
    BuiltImage,
    vm_command,
)

pytestmark = pytest.mark.slow

RpmJob = Callable[..., JobSpec]


@dataclass
class BootedVm:
    name: str
    state_dir: Path
    port: int
    host_key: str
    key_path: str

    @property
    def files(self) -> MachineFiles:
        return MachineFiles(self.state_dir, self.name)

    def ssh_host(self) -> SshHost:
        return SshHost(
            name=self.name,
            address="127.0.0.1",
            known_host_key=self.host_key,
            key_path=self.key_path,
            user="root",
            port=self.port,
        )

    def ssh(self, command: str) -> subprocess.CompletedProcess[str]:
        known_hosts = self.state_dir / f"{self.name}.known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{self.port} {self.host_key}\n")
        return subprocess.run(
            ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
             "-o", f"UserKnownHostsFile={known_hosts}", "-o", "IdentitiesOnly=yes",
             "-i", self.key_path, "-p", str(self.port), "root@127.0.0.1", command],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    def delete(self) -> subprocess.CompletedProcess[str]:
        return vm_command("delete", "--state-dir", str(self.state_dir), name=self.name)


def parse_new_output(stdout: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in stdout.strip().splitlines())


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "vms"


@pytest.fixture
def new_vm(vm_image: BuiltImage, state_dir: Path) -> Iterator[Callable[..., BootedVm]]:
    """Boot VMs with `new`; whatever a test leaves is deleted afterwards."""
    names: list[str] = []

    def boot(*options: str) -> BootedVm:
        name = f"test-{uuid.uuid4().hex[:12]}"
        names.append(name)
        made = vm_command(
            "new", "--image", str(vm_image.directory), "--state-dir", str(state_dir),
            "--memory-mib", "1024", "--disk-mib", "4096", "--boot-timeout", str(BOOT_TIMEOUT),
            *options, name=name, timeout=BOOT_TIMEOUT + 60,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        printed = parse_new_output(made.stdout)
        assert printed["address"] == "127.0.0.1" and printed["user"] == "root"
        return BootedVm(
            name, state_dir, int(printed["port"]), printed["host_key"], printed["key_path"]
        )

    yield boot
    for name in names:
        vm_command("delete", "--state-dir", str(state_dir), name=name)


def test_the_image_is_built_once_then_found_at_once(vm_image: BuiltImage) -> None:
    for name in (KERNEL_FILE, INITRD_FILE, ROOT_FILE):
        assert (vm_image.directory / name).is_file()
    assert (vm_image.directory / ROOT_FILE).stat().st_mode & 0o222 == 0  # VMs never write it

    started = time.monotonic()
    again = vm_command("image", "--cache", str(IMAGE_CACHE))
    seconds = time.monotonic() - started

    assert again.returncode == 0, again.stderr
    assert Path(again.stdout.splitlines()[-1]) == vm_image.directory
    assert seconds < 5, f"a cached image took {seconds:.1f} s to find"


def test_a_directory_without_all_of_its_files_is_no_image(
    tmp_path: Path, vm_image: BuiltImage
) -> None:
    """What a build left before its rename (or a damaged entry) is never taken for an image."""
    partial = tmp_path / vm_image.directory.name
    partial.mkdir()
    for name in (KERNEL_FILE, INITRD_FILE):
        shutil.copyfile(vm_image.directory / name, partial / name)

    assert is_complete(vm_image.directory)
    assert not is_complete(partial)
    made = vm_command("new", "--image", str(partial), "--state-dir", str(tmp_path), name="x")
    assert made.returncode == 1
    assert "is not a VM image" in made.stderr
    assert not (tmp_path / "x").exists()


def test_a_vm_boots_answers_ssh_with_its_own_host_key_and_is_deleted(
    new_vm: Callable[..., BootedVm], state_dir: Path
) -> None:
    vm = new_vm()
    overlay = vm.files.overlay
    assert overlay.is_file() and qemu_pids(vm.files)
    assert vm_command("list", "--state-dir", str(state_dir)).stdout.split() == [vm.name]

    answered = vm.ssh("true && nproc && findmnt -no SIZE / && cat /etc/hostname /proc/cmdline")
    assert answered.returncode == 0, answered.stderr
    # The host key was checked against the one `new` printed: another key is refused.
    other = BootedVm(vm.name, state_dir, vm.port, "ssh-ed25519 " + "A" * 68, vm.key_path)
    assert other.ssh("true").returncode == 255

    deleted = vm.delete()

    assert deleted.returncode == 0, deleted.stderr
    assert qemu_pids(vm.files) == []
    assert not overlay.exists() and not vm.files.directory.exists()
    assert vm_command("list", "--state-dir", str(state_dir)).stdout.split() == []
    assert vm.delete().returncode == 0  # twice is fine
    assert vm_command("delete", "--state-dir", str(state_dir), name="never-made").returncode == 0


def test_a_real_rpmbuild_job_runs_in_the_vm_over_the_ssh_transport(
    new_vm: Callable[..., BootedVm], hello_srpm: Path, rpm_job: RpmJob, result_dir: Path
) -> None:
    vm = new_vm()
    started = time.monotonic()

    result = SshTransport(vm.ssh_host()).run(rpm_job(hello_srpm), should_cancel=lambda: False)

    seconds = time.monotonic() - started
    log = live_log(result_dir)
    assert result.state == "succeeded", (result.failure_reason, log)
    assert rpm_files(result_dir) == ["hello-1.0-1.fc43.src.rpm", "hello-1.0-1.fc43.x86_64.rpm"]
    assert f"Builder host {vm.name} (127.0.0.1), over SSH" in log
    assert "INFO: Finished: succeeded" in log
    print(f"\nrpmbuild job in the VM: {seconds:.1f} s")


def test_a_vm_that_never_answers_is_destroyed_with_the_reason(
    vm_image: BuiltImage, state_dir: Path
) -> None:
    name = f"hang-{uuid.uuid4().hex[:12]}"
    started = time.monotonic()

    made = vm_command(
        "new", "--image", str(vm_image.directory), "--state-dir", str(state_dir),
        "--boot-timeout", "30", "--init-hangs", name=name, timeout=200,
    )  # fmt: skip

    assert made.returncode == 1
    assert made.stderr.strip() == "the VM did not answer SSH within 30 s; destroyed"
    assert made.stdout == ""
    assert time.monotonic() - started < 30 + 30
    assert qemu_pids(MachineFiles(state_dir, name)) == []
    assert list(state_dir.iterdir()) == []


def test_a_vm_frozen_mid_job_is_builder_lost_and_delete_still_cleans_it(
    new_vm: Callable[..., BootedVm], tmp_path: Path, rpm_job: RpmJob, result_dir: Path
) -> None:
    vm = new_vm()
    spec = rpm_job(sleeping_srpm(tmp_path, f"coprsite-sleeper-{uuid.uuid4().hex}"))
    outcome: list[JobResult | Exception] = []

    def run() -> None:
        try:
            outcome.append(SshTransport(vm.ssh_host()).run(spec, should_cancel=lambda: False))
        except Exception as exc:
            outcome.append(exc)

    threading.Thread(target=run, daemon=True).start()
    assert wait_for(lambda: "BUILD-STARTED" in live_log(result_dir), 180), live_log(result_dir)
    (pid,) = qemu_pids(vm.files)
    os.kill(pid, signal.SIGSTOP)
    frozen_at = time.monotonic()

    assert wait_for(lambda: bool(outcome), 60)
    assert isinstance(outcome[0], BuilderLost), outcome
    assert time.monotonic() - frozen_at < 25
    deleted = vm.delete()
    assert deleted.returncode == 0, deleted.stderr
    assert qemu_pids(vm.files) == [] and not vm.files.directory.exists()


def test_new_stopped_by_its_caller_leaves_no_vm(vm_image: BuiltImage, state_dir: Path) -> None:
    name = f"stopped-{uuid.uuid4().hex[:12]}"
    files = MachineFiles(state_dir, name)
    booting = subprocess.Popen(
        [sys.executable, "-m", "builders.vm", "new", "--image", str(vm_image.directory),
         "--state-dir", str(state_dir)],
        cwd=REPO_ROOT, env={**os.environ, "COPRSITE_MACHINE_NAME": name},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert wait_for(lambda: bool(qemu_pids(files)), 60)

    booting.terminate()

    assert booting.wait(30) != 0
    assert qemu_pids(files) == []
    assert not files.directory.exists()
