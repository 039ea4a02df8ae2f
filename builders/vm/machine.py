"""Disposable builder VMs: boot one from the base image, say how to reach it, destroy it.

A VM is known by its name alone (COPRSITE_MACHINE_NAME, chosen by the caller), and all of
it lives in <state root>/<name>/:

    overlay.qcow2         its disk: a copy-on-write overlay of the image's read-only root
    seed.img              a small ext4 disk with its SSH host key, the client key allowed
                          to log in and its name (read by the guest's init at boot)
    host_key, client_key  (and .pub) made fresh for this VM, so its host key is checked
    known_hosts           the host key, for our own SSH check
    qemu.pid, console.log QEMU's pid file and the guest's serial console

QEMU runs daemonized, so the VM outlives the `new` command; `delete` finds it by the
`-pidfile` path on its command line, which no other process has, and SIGKILLs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from builders.arches import GUEST_ARCHES, guest_arch, host_arch
from builders.vm.image import INITRD_FILE, KERNEL_FILE, ROOT_FILE, image_arch, is_complete

MACHINE_NAME_ENV = "COPRSITE_MACHINE_NAME"
STATE_DIR_ENV = "COPRSITE_VM_STATE_DIR"
DEFAULT_STATE_DIR = Path("/var/lib/coprsite/vms")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
QEMU_PREFIX = "qemu-system-"
GUEST_USER = "root"
GUEST_SSH_PORT = 22
ADDRESS = "127.0.0.1"
# The one authorized keys file of the guest's sshd (AuthorizedKeysFile of image.py's
# GUEST_SSHD_CONFIG, a tmpfs the guest's init fills from the seed disk).
GUEST_AUTHORIZED_KEYS = "/run/coprsite/authorized_keys"
# The root disk and the init are fixed by the image's initramfs (initramfs_init.c); the
# console is the arch's first serial port.
KERNEL_COMMAND_LINE = "console={console} net.ifnames=0 panic=-1 quiet"
HANG_FLAG = "coprsite.hang=1"  # see guest_init.py
# A port taken between our probe and QEMU's bind: try another this many times.
PORT_ATTEMPTS = 5
SSH_CHECK_TIMEOUT_SECONDS = 20
SSH_CHECK_PAUSE_SECONDS = 0.5
KILL_WAIT_SECONDS = 10
# The KVM probe boots the image's kernel with no root filesystem: where KVM works it panics
# ("VFS: Unable to mount root fs") within seconds and QEMU exits. Where it does not, QEMU
# fails at the first vCPU reset, or the kernel hangs early (nested virtualization without
# timer or APIC features it needs).
KERNEL_PROBE_TIMEOUT_SECONDS = 20
KERNEL_PROBE_REACHED = b"Kernel panic"
KVM_PROBE_FILE = "kvm-boots"  # in the image's directory: "<boot id> yes|no"
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
X86_64 = GUEST_ARCHES["x86_64"]


class MachineError(Exception):
    """The VM could not be made or used; the message is the one line the caller shows."""


@dataclass(frozen=True)
class MachineSpec:
    """What a VM gets, from the pool's config."""

    memory_mib: int = 2048
    cpus: int = 2
    disk_mib: int = 8192
    boot_timeout: float = 120
    accel: str = "auto"  # auto, kvm or tcg
    # The guest's arch (builders/arches.py); the image must be of it. Another arch
    # than the host's is always emulated (TCG).
    arch: str = field(default_factory=host_arch)
    # Tests only: the guest's init never starts sshd (a VM that hangs in boot).
    init_hangs: bool = False


@dataclass(frozen=True)
class Machine:
    """How to reach a running VM: what `new` prints, one key=value a line."""

    port: int
    host_key: str
    key_path: Path
    address: str = ADDRESS
    user: str = GUEST_USER

    def lines(self) -> list[str]:
        return [
            f"address={self.address}",
            f"port={self.port}",
            f"user={self.user}",
            f"host_key={self.host_key}",
            f"key_path={self.key_path}",
            # The guest's sshd reads only this file (GUEST_SSHD_CONFIG): SSH access for
            # debugging installs the user's keys there (builders/debug_shell.py).
            f"debug_keys_file={GUEST_AUTHORIZED_KEYS}",
        ]


class MachineFiles:
    """The paths of one VM's state directory."""

    def __init__(self, state_root: Path, name: str) -> None:
        if not NAME_PATTERN.fullmatch(name):
            raise MachineError(f"{name!r} is not a VM name (letters, digits, . _ -; 63 at most)")
        self.name = name
        self.directory = state_root.resolve() / name
        self.overlay = self.directory / "overlay.qcow2"
        self.seed = self.directory / "seed.img"
        self.host_key = self.directory / "host_key"
        self.client_key = self.directory / "client_key"
        self.known_hosts = self.directory / "known_hosts"
        self.pidfile = self.directory / "qemu.pid"
        self.console = self.directory / "console.log"
        self.state = self.directory / "machine.json"

    @property
    def host_alias(self) -> str:
        return f"coprsite-vm-{self.name}"


def state_root(option: str | None) -> Path:
    return Path(option or os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR)


# -- new ------------------------------------------------------------------------------------


def machine_new(*, name: str, image: Path, spec: MachineSpec, root: Path) -> Machine:
    """Boot a VM and wait for its sshd; on any failure the VM is destroyed, files and all."""
    files = MachineFiles(root, name)
    _check_image(image, spec)
    files.directory.parent.mkdir(parents=True, exist_ok=True)
    try:
        files.directory.mkdir(mode=0o700)
    except FileExistsError:
        raise MachineError(f"a VM named {name} exists already") from None
    try:
        host_key = _make_keys(files)
        _make_seed(files)
        _make_overlay(files, image, spec.disk_mib)
        port = _start_qemu(files, image, spec, _choose_accel(spec.accel, spec.arch, image))
        _wait_for_ssh(files, port, spec.boot_timeout)
    except BaseException:
        machine_delete(name=name, root=root)
        raise
    machine = Machine(port=port, host_key=host_key, key_path=files.client_key)
    files.state.write_text(json.dumps({"port": port, "host_key": host_key}) + "\n")
    return machine


def _check_image(image: Path, spec: MachineSpec) -> None:
    if not is_complete(image):
        raise MachineError(f"{image} is not a VM image (run `python3 -m builders.vm image`)")
    if image_arch(image) != spec.arch:
        raise MachineError(
            f"{image} is an image for {image_arch(image)}, not {spec.arch} "
            f"(run `python3 -m builders.vm image --arch {spec.arch}`)"
        )
    info = subprocess.run(
        ["qemu-img", "info", "--output=json", str(image / ROOT_FILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    if info.returncode != 0:
        raise MachineError(f"qemu-img cannot read {image / ROOT_FILE}: {info.stderr.strip()}")
    image_mib = json.loads(info.stdout)["virtual-size"] // (1024 * 1024)
    if spec.disk_mib < image_mib:
        raise MachineError(f"a disk of {spec.disk_mib} MiB is smaller than the image ({image_mib})")


def _make_keys(files: MachineFiles) -> str:
    for path in (files.host_key, files.client_key):
        _tool(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", files.name, "-f", str(path)])
    host_key = " ".join(files.host_key.with_suffix(".pub").read_text().split()[:2])
    files.known_hosts.write_text(f"{files.host_alias} {host_key}\n")
    return host_key


def _make_seed(files: MachineFiles) -> None:
    with tempfile.TemporaryDirectory(dir=files.directory) as seed:
        shutil.copyfile(files.host_key, Path(seed, "ssh_host_ed25519_key"))
        shutil.copyfile(files.client_key.with_suffix(".pub"), Path(seed, "authorized_keys"))
        Path(seed, "hostname").write_text(f"{files.name}\n")
        _tool(["mkfs.ext4", "-q", "-L", "coprsite-seed", "-d", seed, str(files.seed), "4M"])


def _make_overlay(files: MachineFiles, image: Path, disk_mib: int) -> None:
    base = (image / ROOT_FILE).resolve()
    _tool(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(base)]
        + [str(files.overlay), f"{disk_mib}M"]
    )


def _choose_accel(accel: str, arch: str, image: Path) -> str:
    native = arch == host_arch()
    if accel == "auto":
        return "kvm" if native and kvm_boots(image) else "tcg"
    if accel == "kvm" and not native:
        raise MachineError(f"KVM runs only {host_arch()} guests here, not {arch} (use tcg)")
    if accel == "kvm" and not kvm_boots(image):
        raise MachineError("KVM cannot run a guest on this host (use --accel tcg or auto)")
    return accel


def kvm_boots(image: Path) -> bool:
    """Whether KVM runs the image's kernel here; probed once per host boot and image.

    /dev/kvm may open fine on a host where no guest kernel boots, and every VM would then
    wait out its boot timeout: the kernel itself is booted once, and the answer kept in the
    image's directory for the rest of this boot.
    """
    boot_id = BOOT_ID.read_text().strip()
    record = image / KVM_PROBE_FILE
    with contextlib.suppress(OSError, ValueError):
        recorded_boot, answer = record.read_text().split()
        if recorded_boot == boot_id:
            return answer == "yes"
    boots = kvm_device_usable() and _kernel_boots_on_kvm(image / KERNEL_FILE)
    with contextlib.suppress(OSError):  # a read-only image directory: probe each time
        partial = record.with_name(f".{KVM_PROBE_FILE}-{os.getpid()}")
        partial.write_text(f"{boot_id} {'yes' if boots else 'no'}\n")
        os.replace(partial, record)
    return boots


def _kernel_boots_on_kvm(kernel: Path) -> bool:
    argv = [
        X86_64.qemu, "-accel", "kvm", "-cpu", "host", "-machine", X86_64.machine, "-m", "256",
        "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
        "-no-reboot", "-kernel", str(kernel), "-append", "console=ttyS0 panic=-1",
    ]  # fmt: skip
    try:
        probe = subprocess.run(
            argv, capture_output=True, timeout=KERNEL_PROBE_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        return False
    return KERNEL_PROBE_REACHED in probe.stdout


def kvm_device_usable() -> bool:
    """Whether this process may open /dev/kvm for a guest of the host's arch (x86_64: the
    probe's machine)."""
    return os.access("/dev/kvm", os.R_OK | os.W_OK) and host_arch() == "x86_64"


def qemu_argv(
    files: MachineFiles, image: Path, spec: MachineSpec, accel: str, port: int
) -> list[str]:
    arch = guest_arch(spec.arch)
    command_line = KERNEL_COMMAND_LINE.format(console=arch.console)
    command_line += f" {HANG_FLAG}" if spec.init_hangs else ""
    return [
        arch.qemu,
        "-name", files.host_alias,
        "-machine", f"{arch.machine},accel={accel}",
        "-cpu", "host" if accel == "kvm" else arch.cpu,
        "-m", str(spec.memory_mib),
        "-smp", str(spec.cpus),
        "-nodefaults", "-no-user-config", "-display", "none",
        # A guest that panics or reboots is finished: QEMU exits instead of booting again.
        "-no-reboot",
        "-kernel", str(image / KERNEL_FILE),
        "-initrd", str(image / INITRD_FILE),
        "-append", command_line,
        # cache=unsafe: the overlay dies with the VM, so nothing is gained by flushing it.
        "-drive", f"file={_qemu_path(files.overlay)},if=virtio,format=qcow2,cache=unsafe,"
        "discard=unmap",
        "-drive", f"file={_qemu_path(files.seed)},if=virtio,format=raw,readonly=on",
        # User networking: outbound through QEMU, inbound only to sshd, from this host.
        "-netdev", f"user,id=net0,hostfwd=tcp:{ADDRESS}:{port}-:{GUEST_SSH_PORT}",
        "-device", f"{arch.net_device},netdev=net0",
        # sshd needs randomness early; without a source, its start waits for entropy.
        "-device", arch.rng_device,
        "-serial", f"file:{files.console}",
        "-pidfile", str(files.pidfile),
        "-daemonize",
    ]  # fmt: skip


def _qemu_path(path: Path) -> str:
    return str(path).replace(",", ",,")  # a comma ends a value in QEMU's option syntax


def _start_qemu(files: MachineFiles, image: Path, spec: MachineSpec, accel: str) -> int:
    """Start QEMU in the background; returns the host port forwarded to the guest's sshd."""
    for _ in range(PORT_ATTEMPTS):
        port = free_port()
        started = subprocess.run(
            qemu_argv(files, image, spec, accel, port),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if started.returncode == 0:
            return port
        if "host forwarding rule" not in started.stderr:
            raise MachineError(f"qemu did not start: {_last_line(started.stderr)}")
    raise MachineError(f"no free port for the VM's SSH after {PORT_ATTEMPTS} attempts")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((ADDRESS, 0))
        return int(probe.getsockname()[1])


def ssh_argv(files: MachineFiles, port: int, command: str) -> list[str]:
    """OpenSSH to the VM with its own client key, checking the host key it was given."""
    return [
        "ssh", "-F", "/dev/null",
        "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={files.known_hosts}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", f"HostKeyAlias={files.host_alias}",
        "-o", "IdentitiesOnly=yes",
        "-o", f"IdentityFile={files.client_key}",
        "-o", "ConnectTimeout=10",
        "-o", "LogLevel=ERROR",
        "-p", str(port), f"{GUEST_USER}@{ADDRESS}", command,
    ]  # fmt: skip


def _wait_for_ssh(files: MachineFiles, port: int, boot_timeout: float) -> None:
    deadline = time.monotonic() + boot_timeout
    while time.monotonic() < deadline:
        if not qemu_pids(files):
            raise MachineError(f"the VM stopped during boot: {_console_tail(files)}")
        with contextlib.suppress(subprocess.TimeoutExpired):
            check = subprocess.run(
                ssh_argv(files, port, "true"),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=min(SSH_CHECK_TIMEOUT_SECONDS, max(1, deadline - time.monotonic())),
                check=False,
            )
            if check.returncode == 0:
                return
        time.sleep(SSH_CHECK_PAUSE_SECONDS)
    raise MachineError(f"the VM did not answer SSH within {boot_timeout:g} s; destroyed")


def _console_tail(files: MachineFiles) -> str:
    with contextlib.suppress(OSError):
        lines = files.console.read_text(errors="replace").strip().splitlines()
        if lines:
            return lines[-1][-200:]
    return "no console output"


# -- delete and list ------------------------------------------------------------------------


def machine_delete(*, name: str, root: Path) -> None:
    """Kill the VM's QEMU and remove all its files; a VM that is not there is fine."""
    files = MachineFiles(root, name)
    for pid in qemu_pids(files):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + KILL_WAIT_SECONDS
    while qemu_pids(files):
        if time.monotonic() > deadline:
            raise MachineError(f"the QEMU of VM {name} did not die after SIGKILL")
        time.sleep(0.1)
    shutil.rmtree(files.directory, ignore_errors=True)
    if files.directory.exists():
        raise MachineError(f"the files of VM {name} could not be removed ({files.directory})")


def qemu_pids(files: MachineFiles) -> list[int]:
    """Live QEMU processes of this VM: those started with its pid file, whatever the file
    says (it may be missing, or name a pid that now belongs to something else)."""
    wanted = str(files.pidfile).encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            argv = Path(entry.path, "cmdline").read_bytes().split(b"\0")
            status = Path(entry.path, "stat").read_text()
        except OSError:
            continue  # ended meanwhile
        if _is_zombie(status) or not _is_qemu(argv[0]):
            continue
        if any(
            flag == b"-pidfile" and value == wanted
            for flag, value in zip(argv, argv[1:], strict=False)
        ):
            found.append(int(entry.name))
    return found


def _is_qemu(program: bytes) -> bool:
    return os.path.basename(program).startswith(QEMU_PREFIX.encode())


def _is_zombie(stat: str) -> bool:
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def machine_names(root: Path) -> list[str]:
    """Names of the VMs that have files here (running, booting or leaked)."""
    if not root.is_dir():
        return []
    return sorted(
        entry.name
        for entry in os.scandir(root)
        if entry.is_dir(follow_symlinks=False) and NAME_PATTERN.fullmatch(entry.name)
    )


def _tool(argv: list[str]) -> None:
    completed = subprocess.run(argv, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise MachineError(f"{argv[0]} failed: {_last_line(completed.stderr)}")


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else "no message"
