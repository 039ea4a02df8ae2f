"""Disposable QEMU builder VMs: the machine side of the `vm` pool, as a resalloc-style CLI.

    python3 -m builders.vm image   build or find the cached base image (builders/vm/image.py)
    python3 -m builders.vm new     boot a VM named $COPRSITE_MACHINE_NAME, print how to SSH in
    python3 -m builders.vm delete  destroy it (idempotent)
    python3 -m builders.vm list    names of the VMs that exist

The pool drives a VM made by `new` like any SSH builder host (builders/transports/ssh.py).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from builders.transports.command import MachineCommands

# Where `python3 -m builders.vm` runs from: the directory that holds builders/.
BUILDERS_PARENT = Path(__file__).resolve().parents[2]


def vm_commands(config: dict[str, Any], *, arch: str) -> MachineCommands:
    """A vm pool's `new` and `delete`: VMs of `arch` (the pool's), sized by its config."""
    module = [sys.executable, "-m", "builders.vm"]
    common = ["--state-dir", config["state_dir"]] if "state_dir" in config else []
    sizes = {
        "--image": config["image"],
        "--memory-mib": config.get("memory_mib", 2048),
        "--cpus": config.get("cpus", 2),
        "--disk-mib": config.get("disk_mib", 8192),
        "--boot-timeout": config.get("boot_timeout", 120),
        "--accel": config.get("accel", "auto"),
        "--arch": arch,
    }
    new = [*module, "new", *common, *(str(part) for item in sizes.items() for part in item)]
    return MachineCommands(
        new=new,
        delete=[*module, "delete", *common],
        # Booting may take the whole boot timeout; `new` destroys a VM that did not answer.
        new_timeout=int(sizes["--boot-timeout"]) + 60,
        env={"PYTHONPATH": str(BUILDERS_PARENT)},
    )
