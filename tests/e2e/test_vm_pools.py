"""Builds in disposable QEMU VMs of a vm pool, with the real worker (TCG on these machines:
a boot takes about 20 s, a trivial build about 25 s)."""

import subprocess

import pytest
import requests

from apps.builds.models import State
from apps.fleet.models import Builder, BuilderPool, BuilderState, Machine, PoolKind
from apps.fleet.services import local_pool_ensure, machine_pool_sync
from tests.builders.srpm_factory import make_srpm
from tests.builders.vm_helpers import BOOT_TIMEOUT, vm_command
from tests.e2e.conftest import finished_build, wait_for
from tests.e2e.test_pipeline import install_from_served_repo, submit_upload
from tests.e2e.test_ssh_builders import live_log, rpm_task

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def only_vm_pool(vm_image, state_dir, **config) -> BuilderPool:
    local_pool_ensure()
    BuilderPool.objects.filter(kind=PoolKind.LOCAL).update(enabled=False)
    pool = BuilderPool.objects.create(
        name="vms",
        kind=PoolKind.VM,
        arches=["x86_64"],
        max_builders=1,
        config={
            "image": str(vm_image.directory),
            "state_dir": str(state_dir),
            "memory_mib": 1024,
            "cpus": 2,
            "disk_mib": 4096,
            "boot_timeout": BOOT_TIMEOUT,
            **config,
        },
    )
    machine_pool_sync(pool=pool)
    return pool


def processes_of(state_dir) -> bytes:
    """Processes (qemu) whose command line names the pool's state directory."""
    return subprocess.run(["pgrep", "-af", str(state_dir)], capture_output=True).stdout


def vms_left(state_dir) -> list[str]:
    listed = vm_command("list", "--state-dir", str(state_dir))
    assert listed.returncode == 0, listed.stderr
    return listed.stdout.split()


def test_a_hostile_build_runs_walled_in_a_vm_that_is_gone_afterwards(
    live_server, worker, packager, tmp_path, vm_image
):
    state_dir = tmp_path / "vms"
    only_vm_pool(vm_image, state_dir)
    BuilderPool.objects.filter(name="vms").update(limit_processes=256, limit_memory_mib=512)
    _, token, _ = packager
    port = live_server.url.rsplit(":", 1)[-1]
    # From inside a VM, QEMU's gateway 10.0.2.2 is the worker's own loopback: the portal.
    probe = f"curl -sS --max-time 5 http://10.0.2.2:{port}/"
    script = f"if {probe} >/dev/null 2>&1; then echo PORTAL=REACHED; else echo PORTAL=WALLED; fi"
    srpm = make_srpm(
        tmp_path, name="hello", build_script=f"{script}; gcc -o hello hello.c", auto_req_prov=False
    )
    build_id = submit_upload(live_server, token, srpm, enable_net=True)

    build = finished_build(build_id, timeout=600)

    log = live_log(rpm_task(build.pk))
    assert build.state == State.SUCCEEDED, (list(build.tasks.values("state_reason")), log)
    assert "Builder host vms-t" in log and "(127.0.0.1), over SSH" in log
    assert "host buildroot: BuildRequires were not installed" in log
    # The walls of the worker's sandbox hold in the VM: limits by cgroup, no way back in.
    assert "Limits: 256 processes, memory 512 MiB" in log and "by cgroup v" in log
    assert "PORTAL=WALLED" in log, log
    # The VM, its qemu and its overlay are gone; so is its row.
    assert vms_left(state_dir) == [] and processes_of(state_dir) == b""
    assert not state_dir.exists() or not any(state_dir.iterdir())
    assert not Machine.objects.exists()
    result, _ = install_from_served_repo(live_server, tmp_path, "hello")  # gpgcheck=1
    assert result.returncode == 0, result.stdout + result.stderr
    assert requests.get(f"{live_server.url}/status/builders/", timeout=30).status_code == 200


def test_a_vm_that_does_not_boot_in_time_is_destroyed_and_the_pool_marked_down(
    live_server, worker, packager, tmp_path, vm_image
):
    state_dir = tmp_path / "vms"
    pool = only_vm_pool(vm_image, state_dir, boot_timeout=2)
    _, token, _ = packager

    build_id = submit_upload(live_server, token, make_srpm(tmp_path), chroots=["fedora-43-x86_64"])

    builder = pool.builders.get()
    wait_for(
        lambda: Builder.objects.filter(pk=builder.pk, state=BuilderState.DOWN).exists(),
        timeout=120,
        what="the pool to be marked down",
    )
    builder.refresh_from_db()
    assert "the VM did not answer SSH within 2 s; destroyed" in builder.state_reason
    task = rpm_task(build_id)
    assert task.state == State.PENDING and task.attempt == 0
    assert vms_left(state_dir) == [] and processes_of(state_dir) == b""
    assert not Machine.objects.exists()
