"""The VM base image for tests: built once per machine by the operator command, then cached."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from builders.arches import guest_arch, host_arch
from builders.vm.image import DEFAULT_CACHE

REPO_ROOT = Path(__file__).resolve().parents[2]
# Where the image is cached: the operator's default, so CI builds it once per machine.
IMAGE_CACHE = Path(os.environ.get("COPRSITE_VM_IMAGE_CACHE", DEFAULT_CACHE))
# Boots take 20-40 s under software emulation (no usable KVM on the development machines).
BOOT_TIMEOUT = 180
TOOLS = ("qemu-img", "mmdebstrap", "mkfs.ext4", "ssh-keygen")
# A foreign arch's image runs its packages' scripts through qemu-user-static (binfmt_misc);
# mmdebstrap asks arch-test whether they run.
FOREIGN_TOOLS = ("arch-test", "update-binfmts")


def vm_command(
    *arguments: str, name: str = "", timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "COPRSITE_MACHINE_NAME": name}
    return subprocess.run(
        [sys.executable, "-m", "builders.vm", *arguments],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass(frozen=True)
class BuiltImage:
    directory: Path
    seconds: float


def build_vm_image(arch: str | None = None) -> BuiltImage:
    """The base image of `arch` (default: the host's), by `python3 -m builders.vm image`
    (minutes the first time; a foreign arch's, under emulation, about ten)."""
    arch = arch or host_arch()
    tools = [guest_arch(arch).qemu, *TOOLS, *(FOREIGN_TOOLS if arch != host_arch() else ())]
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(
            f"{', '.join(missing)} missing: `scripts/install-system-deps --test` as root "
            "installs them (qemu-system-x86, qemu-system-arm, qemu-utils, mmdebstrap, "
            "qemu-user-static, binfmt-support, arch-test); `make test` runs it"
        )
    started = time.monotonic()
    built = vm_command("image", "--cache", str(IMAGE_CACHE), "--arch", arch, timeout=2400)
    if built.returncode != 0:
        raise RuntimeError(f"the VM image did not build: {built.stderr}")
    return BuiltImage(Path(built.stdout.splitlines()[-1]), time.monotonic() - started)
