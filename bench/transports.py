"""Transport benchmark: the overhead of each pool kind over raw `rpmbuild`, in one run.

For one trivial SRPM it prints the median wall time of
1. `rpmbuild --rebuild` run by hand,
2. the local pool (the runner and its sandbox in this process),
3. an ssh pool's host in a network namespace of this machine (its own sshd; the first job
   logs in, starts the command agent and installs the runner copy, later ones reuse the
   connection, the agent and the runner: both figures are printed, and the per-build
   overhead of the later ones over the local pool),
4. a command pool whose `new` makes such a host per job and `delete` removes it (so every
   job also installs the runner), then the same pool with machines made ahead (its
   `min_ready`): for both, the time a job waited to get its machine,
5. a vm pool: a QEMU VM per job from the cached base image (`--vm-runs`, 0 to skip; the
   image is built first when this machine has none: minutes),
6. an aarch64 vm pool: `qemu-system-aarch64 -M virt` under TCG, the same SRPM built for
   fedora-43-aarch64 (`--aarch64-runs`, 0 to skip; the arm64 image is built first when
   this machine has none: about ten minutes), with its boot and its build apart,
and each one's overhead per build against raw rpmbuild (the aarch64 figure is not
comparable: it emulates every instruction). Needs root (namespaces, sshd, qemu).

    .venv/bin/python bench/transports.py [--runs 5] [--vm-runs 2] [--aarch64-runs 1]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from builders.arches import host_arch  # noqa: E402  (after the path is set)
from builders.protocol import KIND_RPM, JobSpec  # noqa: E402
from builders.transports.command import (  # noqa: E402
    CommandTransport,
    Machine,
    MachineCommands,
    machine_new,
)
from builders.transports.local import LocalTransport  # noqa: E402
from builders.transports.ssh import SshHost, SshTransport  # noqa: E402
from builders.vm import vm_commands  # noqa: E402
from builders.vm.machine import kvm_boots  # noqa: E402
from tests.builders.srpm_factory import make_srpm  # noqa: E402
from tests.builders.ssh_helpers import create_host, remove_host  # noqa: E402
from tests.builders.vm_helpers import build_vm_image  # noqa: E402

NETNS_MACHINE = [sys.executable, "-m", "tests.builders.netns_machine"]


class Unrecorded:
    """A machine pool's events, for a bench without the portal's database: `ready` holds
    machines made ahead (a pool's min_ready), `waits` the time each job waited for one."""

    def __init__(self, ready: list[Machine] | None = None) -> None:
        self.ready = ready if ready is not None else []
        self.waits: list[float] = []

    def take(self) -> Machine | None:
        return self.ready.pop() if self.ready else None

    def creating(self, name: str) -> None: ...
    def created(self, machine) -> None: ...

    def acquired(self, machine, waited: float) -> None:
        self.waits.append(waited)

    def keep(self, machine) -> bool:
        return False

    def deleted(self, name: str) -> None: ...

    def delete_failed(self, name: str, reason: str) -> None:
        raise SystemExit(f"delete of {name} failed: {reason}")


def machine_pool(
    commands: MachineCommands, index: int, events: Unrecorded | None = None
) -> CommandTransport:
    """A pool's transport for one job: a ready machine from `events` or one made for it,
    deleted after it."""
    defaults = SshHost(name="bench", address="", known_host_key="", key_path="")
    return CommandTransport(
        pool="bench",
        commands=commands,
        ssh_defaults=defaults,
        name=f"bench-{index}",
        events=events or Unrecorded(),
    )


def made_ahead(commands: MachineCommands, count: int) -> list[Machine]:
    """Machines made before any job, as reconcile makes a pool's min_ready."""
    return [machine_new(commands, f"bench-ready-{index}") for index in range(count)]


def netns_commands(work: Path) -> MachineCommands:
    env = {
        "PYTHONPATH": str(ROOT),
        "TEST_MACHINES_DIR": str(work / "machines"),
        "TEST_MACHINES_LOG": str(work / "machines.log"),
    }
    (work / "machines").mkdir()
    return MachineCommands(new=[*NETNS_MACHINE, "new"], delete=[*NETNS_MACHINE, "delete"], env=env)


def raw_rpmbuild(srpm: Path, work: Path) -> float:
    top = Path(tempfile.mkdtemp(dir=work))
    started = time.monotonic()
    subprocess.run(
        ["rpmbuild", "--rebuild", "--define", f"_topdir {top}", str(srpm)],
        check=True,
        capture_output=True,
    )
    return time.monotonic() - started


def job(srpm: Path, work: Path, index: int, arch: str = "x86_64") -> JobSpec:
    result_dir = work / f"results-{index}"
    return JobSpec(
        task_id=f"bench-{index}",
        kind=KIND_RPM,
        build_id=index,
        owner="bench",
        project="bench",
        result_dir=str(result_dir),
        source={"srpm_path": str(srpm)},
        chroot=f"fedora-43-{arch}",
        arch=arch,
        timeout=600,
    )


def timed(transport, spec: JobSpec) -> float:
    started = time.monotonic()
    result = transport.run(spec, should_cancel=lambda: False)
    elapsed = time.monotonic() - started
    if result.state != "succeeded":
        raise SystemExit(f"{type(transport).__name__}: {result.failure_reason}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--vm-runs", type=int, default=2)
    parser.add_argument("--aarch64-runs", type=int, default=1)
    arguments = parser.parse_args()
    runs = arguments.runs
    work = Path(tempfile.mkdtemp(prefix="coprsite-bench-transports-"))
    host = None
    figures: list[tuple[str, float]] = []
    machine_waits: list[tuple[str, float]] = []
    try:
        srpm = make_srpm(work, name="hello", auto_req_prov=False)
        host = create_host(work / "host", "bench")
        ssh = SshTransport(host.ssh_host())
        raw = [raw_rpmbuild(srpm, work) for _ in range(runs)]
        local = [timed(LocalTransport(), job(srpm, work, i)) for i in range(runs)]
        first_ssh = timed(ssh, job(srpm, work, 1000))
        later_ssh = [timed(ssh, job(srpm, work, 1001 + i)) for i in range(runs)]
        commands = netns_commands(work)
        fresh = Unrecorded()
        command = [
            timed(machine_pool(commands, i, fresh), job(srpm, work, 2000 + i)) for i in range(runs)
        ]
        ready = Unrecorded(made_ahead(commands, runs))
        command_ready = [
            timed(machine_pool(commands, i, ready), job(srpm, work, 2500 + i)) for i in range(runs)
        ]
        figures = [
            ("local pool", statistics.median(local)),
            ("ssh pool, runner installed", first_ssh),
            ("ssh pool, runner present", statistics.median(later_ssh)),
            ("command pool (netns host)", statistics.median(command)),
            ("command pool, machine ready", statistics.median(command_ready)),
        ]
        machine_waits = [
            ("command pool, new machine", statistics.median(fresh.waits)),
            ("command pool, machine ready", statistics.median(ready.waits)),
        ]
        if arguments.vm_runs:
            image = build_vm_image().directory
            vms = vm_commands(
                {"image": str(image), "state_dir": str(work / "vms")}, arch=host_arch()
            )
            vm_fresh = Unrecorded()
            vm = [
                timed(machine_pool(vms, i, vm_fresh), job(srpm, work, 3000 + i))
                for i in range(arguments.vm_runs)
            ]
            figures.append(("vm pool (QEMU, " + accelerator() + ")", statistics.median(vm)))
            machine_waits.append(("vm pool, new machine", statistics.median(vm_fresh.waits)))
        if arguments.aarch64_runs:
            image = build_vm_image("aarch64").directory
            arm = vm_commands(
                {"image": str(image), "state_dir": str(work / "arm-vms"), "boot_timeout": 600},
                arch="aarch64",
            )
            arm_fresh = Unrecorded()
            aarch64 = [
                timed(machine_pool(arm, i, arm_fresh), job(srpm, work, 4000 + i, "aarch64"))
                for i in range(arguments.aarch64_runs)
            ]
            figures.append(("vm pool aarch64 (QEMU TCG)", statistics.median(aarch64)))
            machine_waits.append(("aarch64 vm, new machine", statistics.median(arm_fresh.waits)))
    finally:
        if host is not None:
            remove_host(host)
        shutil.rmtree(work, ignore_errors=True)
    base = statistics.median(raw)
    print(f"raw rpmbuild --rebuild           {base:6.2f} s (median of {runs})")
    for name, figure in figures:
        print(f"{name:32s} {figure:6.2f} s   overhead {figure - base:+6.2f} s per build")
    for name, wait in machine_waits:
        print(f"time to get a machine: {name:28s} {wait:6.2f} s (median)")
    over_local = statistics.median(later_ssh) - statistics.median(local)
    print(
        f"ssh host over the local pool     {over_local:+6.2f} s per build (goal: at most "
        f"+0.50 s on a quiet machine; load average now {os.getloadavg()[0]:.2f} "
        f"on {os.cpu_count()} CPUs)"
    )


def accelerator() -> str:
    """What the VMs ran on, as builders.vm chose it."""
    return "KVM" if kvm_boots(build_vm_image().directory) else "TCG, no usable KVM"


if __name__ == "__main__":
    main()
