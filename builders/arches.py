"""The arches a builder VM can be, and what differs between them: Debian's name, the kernel
package, QEMU's machine and devices, the console; and which arches a machine builds.

A VM of another arch than the host's runs under QEMU's software emulation (TCG); its image
is made by mmdebstrap with that arch's packages, whose maintainer scripts run through
qemu-user-static (binfmt_misc). aarch64 is tested end to end (tests/e2e/test_vm_arches.py);
ppc64le and s390x are the same recipe with QEMU's machines for them, untested here.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass


@dataclass(frozen=True)
class GuestArch:
    name: str  # rpm's and uname's name: what the VM's builder builds
    debian: str  # dpkg's name, for mmdebstrap --architectures
    kernel_package: str
    # Where the kernel package puts the kernel QEMU boots (-kernel).
    kernel_glob: str
    qemu: str
    machine: str
    cpu: str  # under TCG; a KVM guest gets the host's CPU
    console: str  # the kernel's console= for QEMU's first serial port
    # The virtio transport of the machine's devices: PCI, or s390x's channel I/O.
    virtio: str = "pci"
    # The drivers the initramfs loads to find the root disk (builtins are skipped).
    initramfs_modules: tuple[str, ...] = ("virtio_pci", "virtio_blk", "ext4")

    @property
    def net_device(self) -> str:
        return f"virtio-net-{self.virtio}"

    @property
    def rng_device(self) -> str:
        return f"virtio-rng-{self.virtio}"


GUEST_ARCHES = {
    arch.name: arch
    for arch in (
        GuestArch(
            name="x86_64",
            debian="amd64",
            kernel_package="linux-image-amd64",
            kernel_glob="boot/vmlinuz-*",
            qemu="qemu-system-x86_64",
            machine="q35",
            cpu="max",
            console="ttyS0",
        ),
        GuestArch(
            name="aarch64",
            debian="arm64",
            kernel_package="linux-image-arm64",
            kernel_glob="boot/vmlinuz-*",
            qemu="qemu-system-aarch64",
            machine="virt",
            # pauth-impdef: QEMU's own pointer-authentication hash instead of the
            # architected QARMA, which costs a large share of an emulated arm64's time.
            cpu="max,pauth-impdef=on",
            console="ttyAMA0",
        ),
        GuestArch(
            name="ppc64le",
            debian="ppc64el",
            kernel_package="linux-image-powerpc64le",
            kernel_glob="boot/vmlinux-*",
            qemu="qemu-system-ppc64",
            machine="pseries",
            cpu="power9",
            console="hvc0",
        ),
        GuestArch(
            name="s390x",
            debian="s390x",
            kernel_package="linux-image-s390x",
            kernel_glob="boot/vmlinuz-*",
            qemu="qemu-system-s390x",
            machine="s390-ccw-virtio",
            cpu="max",
            console="ttysclp0",
            virtio="ccw",
            initramfs_modules=("virtio_blk", "ext4"),
        ),
    )
}


# The arches a machine builds natively besides its own (rpm's %_arch): an x86_64 host
# builds i686 packages as Copr's do; no other arch is built without emulation.
NATIVE_ARCHES = {
    "x86_64": ("x86_64", "i386", "i486", "i586", "i686"),
    "i686": ("i386", "i486", "i586", "i686"),
    "i386": ("i386", "i486", "i586", "i686"),
    "ppc64le": ("ppc64le",),
}


def native_arches(arch: str) -> tuple[str, ...]:
    return NATIVE_ARCHES.get(arch, (arch,))


class UnknownArch(ValueError):
    """An arch no builder VM can be."""


def host_arch() -> str:
    """rpm's name of this host's arch."""
    machine = platform.machine() or "x86_64"
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


def guest_arch(name: str | None = None) -> GuestArch:
    """The arch `name` (default: the host's), or UnknownArch."""
    name = name or host_arch()
    try:
        return GUEST_ARCHES[name]
    except KeyError:
        known = ", ".join(GUEST_ARCHES)
        raise UnknownArch(f"{name} is not an arch of builder VMs ({known})") from None
