"""The arch table of builder VMs: QEMU's machine, console and devices per arch, and an image
used only for its own arch (no boot here: tests/e2e/test_vm_arches.py boots aarch64)."""

import json
from pathlib import Path

import pytest

from builders.arches import guest_arch
from builders.vm.image import (
    INITRD_FILE,
    KERNEL_FILE,
    RECIPE_FILE,
    ROOT_FILE,
    mmdebstrap_command,
    packages,
)
from builders.vm.machine import MachineError, MachineFiles, MachineSpec, machine_new, qemu_argv


def argv_of(arch: str, tmp_path: Path) -> list[str]:
    spec = MachineSpec(arch=arch)
    return qemu_argv(MachineFiles(tmp_path, "vm1"), tmp_path, spec, "tcg", 2222)


def option(argv: list[str], name: str) -> list[str]:
    return [value for flag, value in zip(argv, argv[1:], strict=False) if flag == name]


@pytest.mark.parametrize(
    ("arch", "qemu", "machine", "cpu", "console", "net"),
    [
        ("x86_64", "qemu-system-x86_64", "q35", "max", "ttyS0", "virtio-net-pci"),
        (
            "aarch64",
            "qemu-system-aarch64",
            "virt",
            "max,pauth-impdef=on",
            "ttyAMA0",
            "virtio-net-pci",
        ),
        ("ppc64le", "qemu-system-ppc64", "pseries", "power9", "hvc0", "virtio-net-pci"),
        ("s390x", "qemu-system-s390x", "s390-ccw-virtio", "max", "ttysclp0", "virtio-net-ccw"),
    ],
)
def test_each_arch_gets_its_qemu_machine_console_and_devices(
    tmp_path, arch, qemu, machine, cpu, console, net
):
    argv = argv_of(arch, tmp_path)

    assert argv[0] == qemu
    assert option(argv, "-machine") == [f"{machine},accel=tcg"]
    assert option(argv, "-cpu") == [cpu]
    assert f"console={console} " in option(argv, "-append")[0]
    assert f"{net},netdev=net0" in option(argv, "-device")
    # The guest reaches out only through QEMU's user network; in, only to its sshd.
    assert option(argv, "-netdev") == ["user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22"]


def test_an_emulated_image_has_its_arch_kernel_and_no_source_task_tools(tmp_path):
    arm = guest_arch("aarch64")
    command = " ".join(
        mmdebstrap_command(
            tmp_path, arch=arm, suite="bookworm", mirror="m", debs=tmp_path, out=tmp_path
        )
    )
    assert "--architectures=arm64" in command and "linux-image-arm64" in command
    assert "amd64" not in command
    assert "rpm" in packages(arm) and "gcc" in packages(arm) and "git" not in packages(arm)
    assert "git" in packages(guest_arch("x86_64"))


def test_an_image_boots_only_as_the_arch_it_was_made_for(tmp_path):
    image = tmp_path / "image"
    image.mkdir()
    for name in (KERNEL_FILE, INITRD_FILE, ROOT_FILE):
        (image / name).write_bytes(b"")
    (image / RECIPE_FILE).write_text(json.dumps({"arch": "aarch64"}))

    with pytest.raises(MachineError, match="is an image for aarch64, not x86_64"):
        machine_new(name="vm1", image=image, spec=MachineSpec(arch="x86_64"), root=tmp_path)
    assert not (tmp_path / "vm1").exists()
