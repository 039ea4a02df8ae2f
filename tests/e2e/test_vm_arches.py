"""A foreign arch by full-system emulation: an aarch64 build end to end in a vm pool whose
VMs are `qemu-system-aarch64 -M virt` machines booted from the arm64 image, under TCG."""

import subprocess
from pathlib import Path

import pytest
import rpmfile
from django.conf import settings

from apps.builds.models import BuildTask, State
from apps.fleet.models import BuilderPool, Machine, PoolKind
from apps.fleet.services import local_pool_ensure, machine_pool_sync
from tests.builders.srpm_factory import make_srpm
from tests.e2e.conftest import finished_build
from tests.e2e.test_pipeline import submit_upload
from tests.e2e.test_ssh_builders import live_log
from tests.e2e.test_vm_pools import processes_of, vms_left

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHROOT = "fedora-43-aarch64"
# An emulated arm64 boots in about a minute on a loaded 2-CPU host (x86_64: 20 s).
BOOT_TIMEOUT = 400
EM_AARCH64 = 183


def test_an_aarch64_build_runs_in_an_emulated_arm64_vm(
    live_server, worker, packager, tmp_path, aarch64_vm_image
):
    state_dir = tmp_path / "vms"
    local_pool_ensure()  # the source task (no arch) runs on this host, as it is quicker
    pool = BuilderPool.objects.create(
        name="arm-vms",
        kind=PoolKind.VM,
        arch="aarch64",  # arches left empty: the pool serves its VMs' arch
        max_builders=1,
        config={
            "image": str(aarch64_vm_image.directory),
            "state_dir": str(state_dir),
            "memory_mib": 1024,
            "cpus": 2,
            "disk_mib": 4096,
            "boot_timeout": BOOT_TIMEOUT,
        },
    )
    assert machine_pool_sync(pool=pool).arches == ["aarch64"]
    _, token, _ = packager
    # From inside a VM, QEMU's gateway 10.0.2.2 is the worker's own loopback: the portal.
    port = live_server.url.rsplit(":", 1)[-1]
    probe = f"timeout 5 bash -c 'exec 3<>/dev/tcp/10.0.2.2/{port}'"
    script = f"if {probe} 2>/dev/null; then echo PORTAL=REACHED; else echo PORTAL=WALLED; fi"
    srpm = make_srpm(tmp_path, name="hello", build_script=f"{script}; gcc -o hello hello.c")

    build_id = submit_upload(live_server, token, srpm, chroots=[CHROOT], enable_net=True)
    build = finished_build(build_id, timeout=1200)

    task = BuildTask.objects.get(build=build, chroot__name=CHROOT)
    log = live_log(task)
    assert build.state == State.SUCCEEDED, (task.state_reason, log)
    assert "Builder host arm-vms-t" in log, log
    assert "PORTAL=WALLED" in log, log
    rpms = sorted((Path(settings.RESULTS_ROOT) / "packager/tools" / task.result_dir).glob("*.rpm"))
    binaries = [rpm for rpm in rpms if not rpm.name.endswith(".src.rpm")]
    assert binaries, rpms
    for rpm in binaries:
        arch = subprocess.run(
            ["rpm", "-qp", "--qf", "%{ARCH}", str(rpm)], capture_output=True, text=True
        )
        assert arch.stdout == "aarch64", (rpm.name, arch.stdout, arch.stderr)
    # The compiler in the VM made arm64 code (ELF machine 183, EM_AARCH64), not the host's.
    (hello,) = [rpm for rpm in binaries if rpm.name.startswith("hello-1.0-1")]
    with rpmfile.open(hello) as package:
        program = package.extractfile("./usr/bin/hello").read()
    assert program[:4] == b"\x7fELF" and int.from_bytes(program[18:20], "little") == EM_AARCH64
    assert vms_left(state_dir) == [] and processes_of(state_dir) == b""
    assert not Machine.objects.exists()
