"""The `python3 -m builders.vm` command line (see builders/vm/__init__.py)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from builders.arches import GUEST_ARCHES, UnknownArch, host_arch
from builders.vm.image import (
    DEFAULT_CACHE,
    DEFAULT_MIRROR,
    DEFAULT_SUITE,
    ImageError,
    find_or_build_image,
)
from builders.vm.machine import (
    MACHINE_NAME_ENV,
    MachineError,
    MachineSpec,
    machine_delete,
    machine_names,
    machine_new,
    state_root,
)


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python3 -m builders.vm", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    image = commands.add_parser("image", help="build or find the cached base image")
    image.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    image.add_argument("--arch", choices=tuple(GUEST_ARCHES), default=host_arch())
    image.add_argument("--suite", default=DEFAULT_SUITE)
    image.add_argument("--mirror", default=DEFAULT_MIRROR)
    image.add_argument("--force", action="store_true", help="build again even when cached")

    new = commands.add_parser("new", help=f"boot the VM named ${MACHINE_NAME_ENV}")
    new.add_argument("--image", type=Path, required=True, help="a directory made by `image`")
    new.add_argument("--memory-mib", type=int, default=MachineSpec.memory_mib)
    new.add_argument("--cpus", type=int, default=MachineSpec.cpus)
    new.add_argument("--disk-mib", type=int, default=MachineSpec.disk_mib)
    new.add_argument("--boot-timeout", type=float, default=MachineSpec.boot_timeout)
    new.add_argument("--accel", choices=("auto", "kvm", "tcg"), default=MachineSpec.accel)
    new.add_argument("--arch", choices=tuple(GUEST_ARCHES), default=host_arch())
    new.add_argument("--init-hangs", action="store_true", help="tests: the guest never starts sshd")

    delete = commands.add_parser("delete", help=f"destroy the VM named ${MACHINE_NAME_ENV}")
    commands.add_parser("list", help="names of the VMs that exist, one a line")
    for command in (new, delete, commands.choices["list"]):
        command.add_argument("--state-dir", help="default: $COPRSITE_VM_STATE_DIR or /var/lib/...")
    return parser.parse_args(argv)


def machine_name() -> str:
    name = os.environ.get(MACHINE_NAME_ENV, "")
    if not name:
        raise MachineError(f"{MACHINE_NAME_ENV} is not set: it names the VM")
    return name


def run(arguments: argparse.Namespace) -> None:
    if arguments.command == "image":
        directory = find_or_build_image(
            arguments.cache,
            arch=arguments.arch,
            suite=arguments.suite,
            mirror=arguments.mirror,
            force=arguments.force,
        )
        print(directory)
    elif arguments.command == "new":
        spec = MachineSpec(
            memory_mib=arguments.memory_mib,
            cpus=arguments.cpus,
            disk_mib=arguments.disk_mib,
            boot_timeout=arguments.boot_timeout,
            accel=arguments.accel,
            arch=arguments.arch,
            init_hangs=arguments.init_hangs,
        )
        root = state_root(arguments.state_dir)
        machine = machine_new(name=machine_name(), image=arguments.image, spec=spec, root=root)
        print("\n".join(machine.lines()))
    elif arguments.command == "delete":
        machine_delete(name=machine_name(), root=state_root(arguments.state_dir))
    else:
        for name in machine_names(state_root(arguments.state_dir)):
            print(name)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    # A caller that gives up on `new` (SIGTERM) must not leak the VM: exiting through
    # SystemExit lets machine_new destroy what it made.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        run(arguments)
    except (MachineError, ImageError, UnknownArch) as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
