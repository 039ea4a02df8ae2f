"""How builder VMs choose KVM or TCG (builders/vm/machine.py): KVM only when it boots the
image's own kernel, probed once per host boot; the VM tests boot for real."""

from pathlib import Path

import pytest

from builders.vm import machine
from builders.vm.machine import KVM_PROBE_FILE, kvm_boots


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The kernel boots the probe would make, recorded instead of made (an answer of no)."""
    made: list[Path] = []
    monkeypatch.setattr(machine, "kvm_device_usable", lambda: True)
    monkeypatch.setattr(
        machine, "_kernel_boots_on_kvm", lambda kernel: made.append(kernel) or False
    )
    return made


def test_the_kernel_is_probed_once_per_host_boot(tmp_path: Path, probes: list[Path]) -> None:
    assert kvm_boots(tmp_path) is False
    assert kvm_boots(tmp_path) is False

    assert probes == [tmp_path / "kernel"]
    boot_id = machine.BOOT_ID.read_text().strip()
    assert (tmp_path / KVM_PROBE_FILE).read_text() == f"{boot_id} no\n"


def test_an_answer_of_an_earlier_boot_is_probed_again(tmp_path: Path, probes: list[Path]) -> None:
    (tmp_path / KVM_PROBE_FILE).write_text("an-earlier-boot yes\n")

    assert kvm_boots(tmp_path) is False
    assert len(probes) == 1


def test_this_boots_answer_is_kept(tmp_path: Path, probes: list[Path]) -> None:
    boot_id = machine.BOOT_ID.read_text().strip()
    (tmp_path / KVM_PROBE_FILE).write_text(f"{boot_id} yes\n")

    assert kvm_boots(tmp_path) is True
    assert probes == []
