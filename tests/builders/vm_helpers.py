"""The VM base image for tests: built once per machine by the operator command, then cached."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from builders.vm.image import DEFAULT_CACHE

REPO_ROOT = Path(__file__).resolve().parents[2]
# Where the image is cached: the operator's default, so CI builds it once per machine.
IMAGE_CACHE = Path(os.environ.get("COPRSITE_VM_IMAGE_CACHE", DEFAULT_CACHE))
# Boots take 20-40 s under software emulation (no usable KVM on the development machines).
BOOT_TIMEOUT = 180
TOOLS = ("qemu-system-x86_64", "qemu-img", "mmdebstrap", "mkfs.ext4", "ssh-keygen")


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


def build_vm_image() -> BuiltImage:
    """The base image, by `python3 -m builders.vm image` (minutes the first time)."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(
            f"{', '.join(missing)} missing: `scripts/install-system-deps --test` as root "
            "installs them (qemu-system-x86, qemu-utils, mmdebstrap); `make test` runs it"
        )
    started = time.monotonic()
    built = vm_command("image", "--cache", str(IMAGE_CACHE), timeout=1800)
    if built.returncode != 0:
        raise RuntimeError(f"the VM image did not build: {built.stderr}")
    return BuiltImage(Path(built.stdout.splitlines()[-1]), time.monotonic() - started)
