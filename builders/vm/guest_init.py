#!/usr/bin/python3
"""PID 1 of a coprsite builder VM: mount, grow the root disk, network up, sshd, reap.

`python3 -m builders.vm image` copies this file into the base image as GUEST_INIT_PATH; the
image's initramfs (initramfs_init.c) mounts the root disk and executes it. No systemd: a
builder VM lives for one job, and its boot must take seconds under software emulation.
It imports nothing of coprsite (the guest has no such package).

What each VM gets from its seed disk (/dev/vdb, made by `new`): its SSH host key, the one
client key allowed to log in as root, and its name.
"""

import os
import shutil
import subprocess
import sys
import time
import traceback

ROOT_DEVICE = "/dev/vda"
SEED_DEVICE = "/dev/vdb"
SEED_MOUNT = "/run/coprsite-seed"
# sshd reads its host key and the authorized client key from here (a tmpfs).
KEYS_DIR = "/run/coprsite"
SSHD_CONFIG = "/etc/ssh/coprsite_sshd_config"
# QEMU's user network: the guest is .15, the gateway .2 and its DNS forwarder .3.
GUEST_ADDRESS = "10.0.2.15/24"
GATEWAY = "10.0.2.2"
NAMESERVER = "10.0.2.3"
# Test switch on the kernel command line: never start sshd (a guest that hangs in boot).
HANG_FLAG = "coprsite.hang=1"
# Drivers the initramfs did not load and builds need (loop: the sized disk
# of a job; tun: slirp4netns for a job's network).
MODULES = ("virtio_net", "loop", "tun")
KERNEL_FILESYSTEMS = (
    ("proc", "/proc", "nosuid,nodev,noexec"),
    ("sysfs", "/sys", "nosuid,nodev,noexec"),
    ("devtmpfs", "/dev", "nosuid,mode=755"),
    ("devpts", "/dev/pts", "nosuid,noexec,gid=5,mode=620,ptmxmode=666"),
    ("tmpfs", "/dev/shm", "nosuid,nodev,mode=1777"),  # noqa: S108 - a mount point
    ("tmpfs", "/run", "nosuid,nodev,mode=755"),
    ("cgroup2", "/sys/fs/cgroup", "nosuid,nodev,noexec,nsdelegate"),
)


def say(message: str) -> None:
    print(f"coprsite-init: {message}", file=sys.stderr, flush=True)


def run(*argv: str) -> None:
    completed = subprocess.run(argv, check=False)
    if completed.returncode != 0:
        say(f"{' '.join(argv)} exited {completed.returncode}")


def mount_kernel_filesystems() -> None:
    # The initramfs moved its /dev here already: mount only what is missing.
    for fstype, target, options in KERNEL_FILESYSTEMS:
        os.makedirs(target, exist_ok=True)
        if not os.path.ismount(target):
            run("mount", "-t", fstype, "-o", options, fstype, target)


def read_seed() -> str:
    """Copy the VM's keys from the seed disk to a tmpfs; returns the VM's name."""
    os.makedirs(SEED_MOUNT, exist_ok=True)
    run("mount", "-o", "ro", SEED_DEVICE, SEED_MOUNT)
    os.makedirs(KEYS_DIR, mode=0o700, exist_ok=True)
    for name in ("ssh_host_ed25519_key", "authorized_keys", "hostname"):
        target = os.path.join(KEYS_DIR, name)
        shutil.copyfile(os.path.join(SEED_MOUNT, name), target)
        os.chmod(target, 0o600)
    run("umount", SEED_MOUNT)
    with open(os.path.join(KEYS_DIR, "hostname")) as file:
        return file.read().strip()


def network_up(hostname: str) -> None:
    run("hostname", hostname)
    run("ip", "link", "set", "lo", "up")
    run("ip", "link", "set", "eth0", "up")
    run("ip", "addr", "add", GUEST_ADDRESS, "dev", "eth0")
    run("ip", "route", "add", "default", "via", GATEWAY)
    with open("/etc/resolv.conf", "w") as file:
        file.write(f"nameserver {NAMESERVER}\n")


def start_sshd() -> None:
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # its privilege separation dir
    subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", SSHD_CONFIG])


def reap_forever() -> None:
    """PID 1 inherits every orphan: wait for them so none stays a zombie."""
    while True:
        try:
            os.wait()
        except ChildProcessError:
            time.sleep(1)


def main() -> None:
    os.environ["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"
    mount_kernel_filesystems()
    run("modprobe", "-a", *MODULES)
    # `new` made the copy-on-write overlay as big as the VM's disk: the filesystem follows.
    run("resize2fs", ROOT_DEVICE)
    hostname = read_seed()
    network_up(hostname)
    with open("/proc/cmdline") as file:
        hang = HANG_FLAG in file.read().split()
    if hang:
        say("asked to hang before sshd")
    else:
        start_sshd()
        say(f"{hostname} is up")
    reap_forever()


if __name__ == "__main__":
    try:
        main()
    except BaseException:
        # A dead PID 1 panics the kernel, and QEMU (-no-reboot) exits: `new` sees that.
        traceback.print_exc()
        raise
