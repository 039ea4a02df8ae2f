"""The base image of builder VMs: a Debian tree from distribution packages, cached by recipe.

    python3 -m builders.vm image [--cache DIR] [--arch aarch64] [--suite bookworm] [--mirror URL]
                                 [--force]

builds (once) a root filesystem with `mmdebstrap` and Debian's own kernel, for the host's
arch or another (builders/arches.py: a foreign arch's packages run their maintainer
scripts through qemu-user-static, so the host needs it and binfmt_misc), and leaves in
DIR/<suite>-<arch>-<recipe hash>/:

    kernel, initrd.img    the distribution kernel and its initramfs (direct kernel boot)
    root.qcow2            the root filesystem (ext4, no partition table), read-only: each
                          VM boots from a copy-on-write overlay of it
    recipe.json           what went in (arch, suite, packages, hash of the guest files)

and keeps the Debian packages it downloaded in DIR/debs/ (DIR/debs-<arch>/ for a foreign
arch; mmdebstrap's sync-in and
sync-out hooks): a later build, of this recipe (--force) or of a changed one, downloads only
what the mirror has newer, then prunes what the mirror no longer has (apt-get autoclean).

The hash covers everything that decides the image's content (the arch, the suite, and the sources of
this module, of the guest's init and of the initramfs' init: packages, configs, steps), not
the mirror it came from: a second call finds the directory and prints it at once, and any
change to how the image is made makes a new one. The image is built in a temporary directory beside
the cache entry and renamed into place, so a half-built image is never found; a lock keeps
two builds of the same recipe from running at once.

A Fedora image, where Fedora mirrors are reachable, is the same tree made with dnf instead
of mmdebstrap (mock's own `mock -r fedora-43-x86_64 --init` runs this dnf into a mock root);
every later step (guest files, kernel, initramfs, root disk) is the same:

    dnf --installroot=$TREE --releasever=43 --use-host-config --setopt=install_weak_deps=0 \\
        install -y python3 rpm-build bubblewrap slirp4netns iproute util-linux e2fsprogs \\
        openssh-server gcc glibc-devel glibc-static make cpio file debugedit elfutils \\
        ca-certificates curl git-core kmod kernel-core

(Fedora's kernel-core ships the kernel as $TREE/lib/modules/*/vmlinuz, not /boot/vmlinuz-*,
and its modules xz-compressed: _copy_kernel and _module_files would look there and
decompress them.)
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import hashlib
import json
import lzma
import os
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from builders.arches import GuestArch, guest_arch, host_arch

DEFAULT_CACHE = Path("/var/cache/coprsite/vm-images")
DEFAULT_SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
KERNEL_FILE = "kernel"
INITRD_FILE = "initrd.img"
ROOT_FILE = "root.qcow2"
RECIPE_FILE = "recipe.json"
# The downloaded .deb files, kept between builds (not part of any image).
DEBS_DIR = "debs"
APT_ARCHIVES = "/var/cache/apt/archives"
GUEST_INIT_SOURCE = Path(__file__).resolve().parent / "guest_init.py"
GUEST_INIT_PATH = "/usr/local/sbin/coprsite-init"
GUEST_SSHD_CONFIG_PATH = "/etc/ssh/coprsite_sshd_config"
# The guest's sshd: root with the VM's one client key only; keys come from the seed disk.
GUEST_SSHD_CONFIG = """\
HostKey /run/coprsite/ssh_host_ed25519_key
AuthorizedKeysFile /run/coprsite/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
AcceptEnv LANG
"""
# What the runner needs on a builder (compare RUN_TOOLS of scripts/install-system-deps),
# the guest init's tools; the arch's kernel comes on top. Debian installs no Recommends here.
PACKAGES = (
    "python3",
    "rpm",  # rpm, rpmbuild
    "bubblewrap",
    "slirp4netns",
    "iproute2",
    "util-linux",  # unshare, prlimit, setpriv, mount
    "e2fsprogs",  # mkfs.ext4 for a job's sized disk, resize2fs for the root
    "openssh-server",
    "gcc",
    "libc6-dev",
    "make",
    "cpio",
    "file",
    "debugedit",  # find-debuginfo
    "elfutils",  # eu-strip
    "ca-certificates",
    "curl",
    "git",  # source tasks that clone
    "kmod",
)
# What only source tasks use (downloads, clones). An emulated VM runs no source tasks (the
# scheduler gives them to native builders), and these cost most of its image's build time
# under qemu-user: ca-certificates' configure step alone runs a few processes per
# certificate, git brings perl.
SOURCE_TASK_PACKAGES = ("ca-certificates", "curl", "git")
# Documentation, manuals and translations: nobody reads them in a disposable VM.
DPKG_EXCLUDES = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
)
# The initramfs: a static /init (initramfs_init.c) and the drivers that find the root disk.
INITRAMFS_INIT_SOURCE = Path(__file__).resolve().parent / "initramfs_init.c"
ARCHES_SOURCE = Path(__file__).resolve().parents[1] / "arches.py"
# The kernel package itself: the one the arch's meta-package (linux-image-arm64) names.
KERNEL_DOWNLOAD = (
    "cd {archives} && apt-get download -qq "
    '"$(apt-cache depends {meta} | sed -n "s/^ *Depends: \\(linux-image-[0-9].*\\)/\\1/p")"'
)
HOST_KEYS = "ssh_host_rsa_key ssh_host_ecdsa_key ssh_host_ed25519_key"
INITRAMFS_BUILD_DIR = "coprsite-initramfs"  # in the tree, while the image is built
XZ_MAGIC = b"\xfd7zXZ\x00"
ELF_MAGIC = b"\x7fELF"
TREE_DIR = "tree"  # in the build's directory: the root filesystem being made
# Memory a host needs free to make the tree in a tmpfs (it peaks at about 1.2 GB).
TREE_IN_MEMORY_MIB = 4096
# Room on the root filesystem beyond its content; VMs grow it to their disk size at boot.
SPARE_MIB = 512
SIZE_STEP_MIB = 256
MIB = 1024 * 1024


class ImageError(Exception):
    """The image could not be built; the message says which step failed."""


def packages(arch: GuestArch) -> list[str]:
    native = arch.name == host_arch()
    wanted = [name for name in PACKAGES if native or name not in SOURCE_TASK_PACKAGES]
    return wanted


def recipe(suite: str, arch: str) -> dict[str, object]:
    sources = (Path(__file__).resolve(), GUEST_INIT_SOURCE, INITRAMFS_INIT_SOURCE, ARCHES_SOURCE)
    return {
        "arch": arch,
        "suite": suite,
        "packages": packages(guest_arch(arch)),
        "sources": {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sources},
    }


def recipe_hash(suite: str, arch: str) -> str:
    text = json.dumps(recipe(suite, arch), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def image_dir(cache: Path, suite: str, arch: str) -> Path:
    return cache / f"{suite}-{arch}-{recipe_hash(suite, arch)}"


def is_complete(directory: Path) -> bool:
    return all((directory / name).is_file() for name in (KERNEL_FILE, INITRD_FILE, ROOT_FILE))


def image_arch(directory: Path) -> str:
    """The arch an image was made for (images made before arches were recorded: x86_64)."""
    try:
        return str(json.loads((directory / RECIPE_FILE).read_text()).get("arch", "x86_64"))
    except (OSError, ValueError, AttributeError):
        return "x86_64"


def debs_dir(cache: Path, arch: GuestArch) -> Path:
    # One per arch: each build replaces its directory with the .deb files it used.
    return cache / (DEBS_DIR if arch.name == host_arch() else f"{DEBS_DIR}-{arch.debian}")


def find_or_build_image(
    cache: Path,
    *,
    arch: str | None = None,
    suite: str = DEFAULT_SUITE,
    mirror: str = DEFAULT_MIRROR,
    force: bool = False,
) -> Path:
    """The image directory of this recipe, built first when the cache has none (or force)."""
    guest = guest_arch(arch)
    final = image_dir(cache, suite, guest.name)
    if is_complete(final) and not force:
        return final
    cache.mkdir(parents=True, exist_ok=True)
    with _build_lock(cache / f".{final.name}.lock"):
        if is_complete(final) and not force:
            return final  # another build of this recipe finished while we waited
        _remove_leftovers(cache, final.name)
        work = Path(tempfile.mkdtemp(prefix=f".{final.name}.building-", dir=cache))
        try:
            _build_into(work, arch=guest, suite=suite, mirror=mirror, debs=debs_dir(cache, guest))
            if final.exists():
                shutil.rmtree(final)  # --force, or a damaged entry
            os.rename(work, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return final


@contextlib.contextmanager
def _build_lock(path: Path) -> Iterator[None]:
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _remove_leftovers(cache: Path, name: str) -> None:
    # Under the lock no other build of this recipe runs: what is there was left by a crash.
    for leftover in cache.glob(f".{name}.building-*"):
        _unmount(leftover / TREE_DIR)
        shutil.rmtree(leftover, ignore_errors=True)


def _build_into(work: Path, *, arch: GuestArch, suite: str, mirror: str, debs: Path) -> None:
    tree = work / TREE_DIR
    debs.mkdir(exist_ok=True)
    downloaded = work / DEBS_DIR
    downloaded.mkdir()
    with scratch_tree(tree):
        _run(
            mmdebstrap_command(
                tree, arch=arch, suite=suite, mirror=mirror, debs=debs, out=downloaded
            ),
            step="mmdebstrap",
        )
        keep_debs(downloaded, debs)
        _install_kernel(tree, debs, arch)
        _install_guest_files(tree)
        _copy_kernel(tree, work, arch)
        _make_initramfs(tree, work / INITRD_FILE, arch)
        _make_root_disk(tree, work / ROOT_FILE)
    (work / RECIPE_FILE).write_text(json.dumps(recipe(suite, arch.name), indent=2) + "\n")
    (work / ROOT_FILE).chmod(0o444)  # VMs write to their overlays, never to the base
    work.chmod(0o755)


@contextlib.contextmanager
def scratch_tree(tree: Path) -> Iterator[None]:
    """The directory the root filesystem is made in, removed afterwards.

    In memory (a tmpfs) when the host has TREE_IN_MEMORY_MIB to spare: deleting the 1 GB
    tree from disk took half a minute of each build, and unpacking onto it was slower.
    """
    tree.mkdir()
    in_memory = _available_mib() >= TREE_IN_MEMORY_MIB and _tool_ok(
        ["mount", "-t", "tmpfs", "-o", "mode=0755,size=3g", "coprsite-image", str(tree)]
    )
    print(f"tree: {'tmpfs' if in_memory else 'on disk'}", file=sys.stderr, flush=True)
    try:
        yield
    finally:
        if in_memory:
            _unmount(tree)
        shutil.rmtree(tree, ignore_errors=True)


def _available_mib() -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    return 0


def _unmount(path: Path) -> None:
    if os.path.ismount(path):
        _tool_ok(["umount", "--lazy", str(path)])


def _tool_ok(argv: list[str]) -> bool:
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0


def mmdebstrap_command(
    tree: Path, *, arch: GuestArch, suite: str, mirror: str, debs: Path, out: Path
) -> list[str]:
    """mmdebstrap with the .deb files of `debs` put where apt looks first, and every .deb
    the tree was made of (kept ones and new downloads, less those the mirror dropped) copied
    to `out` before mmdebstrap's cleanup empties the tree's apt cache."""
    archives = shlex.quote(APT_ARCHIVES)
    kernel_download = KERNEL_DOWNLOAD.format(archives=archives, meta=arch.kernel_package)
    return [
        "mmdebstrap",
        "--mode=root",
        "--variant=minbase",
        # A foreign arch's programs (maintainer scripts, the gcc and modprobe below) run in
        # the tree through qemu-user-static's binfmt_misc entries.
        f"--architectures={arch.debian}",
        "--include=" + ",".join(packages(arch)),
        *(f"--dpkgopt={option}" for option in DPKG_EXCLUDES),
        # No fsync per unpacked file: a build that does not finish is thrown away anyway,
        # and the tree is only read back into the root disk. (It stays in the image's
        # dpkg.cfg.d, where it is as harmless: each VM's disk is a throw-away overlay.)
        "--dpkgopt=force-unsafe-io",
        # Keep the essential packages' files too (mmdebstrap unlinks its own downloads).
        "--skip=essential/unlink",
        f'--setup-hook=mkdir -p "$1"{archives}',
        f"--setup-hook=sync-in {shlex.quote(str(debs))} {archives}",
        # openssh-server makes host keys unless they exist; each VM gets its own instead
        # (_install_guest_files removes these), and RSA keys take long under emulation.
        f'--essential-hook=mkdir -p "$1"/etc/ssh && cd "$1"/etc/ssh && touch {HOST_KEYS}',
        # The kernel is downloaded here and unpacked by _install_kernel, not installed:
        # its package would bring initramfs-tools (Debian's initramfs: every module, and
        # never used, the image has its own) and udev, whose set-up, like the unpacking of
        # the kernel's 350 MB, takes long under qemu-user.
        f'--customize-hook=chroot "$1" sh -c {shlex.quote(kernel_download)}',
        '--customize-hook=chroot "$1" apt-get autoclean -qq',
        f"--customize-hook=sync-out {archives} {shlex.quote(str(out))}",
        suite,
        str(tree),
        mirror,
    ]


def keep_debs(downloaded: Path, debs: Path) -> None:
    """Make `downloaded` (a build's .deb files) the cache `debs`, replacing what was there.

    Only a build that got this far replaces the cache; the old one is renamed away first,
    so the cache directory is never half written.
    """
    for path in downloaded.iterdir():  # apt's lock file and partial/ are no cache
        if path.is_dir():
            shutil.rmtree(path)
        elif not path.name.endswith(".deb"):
            path.unlink()
    old = debs.with_name(f".{debs.name}.old-{os.getpid()}")
    if debs.exists():
        os.rename(debs, old)
    os.rename(downloaded, debs)
    shutil.rmtree(old, ignore_errors=True)


def _install_guest_files(tree: Path) -> None:
    init = tree / GUEST_INIT_PATH.lstrip("/")
    init.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(GUEST_INIT_SOURCE, init)
    init.chmod(0o755)
    (tree / GUEST_SSHD_CONFIG_PATH.lstrip("/")).write_text(GUEST_SSHD_CONFIG)
    # Installing openssh-server made host keys: every VM would share them. Each VM gets
    # its own from its seed disk instead.
    for key in (tree / "etc/ssh").glob("ssh_host_*"):
        key.unlink()


def _install_kernel(tree: Path, debs: Path, arch: GuestArch) -> None:
    """Unpack the kernel package with the host's dpkg-deb (no emulation), and index its
    modules with the image's depmod (modprobe, in the guest and for _module_files, reads
    modules.dep)."""
    packages = sorted(debs.glob(f"linux-image-[0-9]*_{arch.debian}.deb"))
    if len(packages) != 1:
        raise ImageError(f"expected one kernel package in {debs}, found {packages}")
    # tar keeps the tree's /lib -> usr/lib symlink (dpkg-deb --extract would replace it).
    unpack = 'dpkg-deb --fsys-tarfile "$1" | tar -x --keep-directory-symlink -C "$2"'
    _run(["sh", "-c", unpack, "sh", str(packages[0]), str(tree)], step="unpack the kernel")
    (version,) = [path.name for path in (tree / "lib/modules").iterdir()]
    _run(["chroot", str(tree), "depmod", version], step="depmod")


def _copy_kernel(tree: Path, work: Path, arch: GuestArch) -> None:
    kernels = sorted(tree.glob(arch.kernel_glob))
    if len(kernels) != 1:
        raise ImageError(f"expected one kernel {arch.kernel_glob}, found {kernels}")
    (work / KERNEL_FILE).write_bytes(_uncompressed(kernels[0].read_bytes()))


def _make_initramfs(tree: Path, target: Path, arch: GuestArch) -> None:
    """Our initramfs, not Debian's: its udev takes about 15 s of each emulated boot."""
    build = tree / INITRAMFS_BUILD_DIR
    build.mkdir()
    shutil.copyfile(INITRAMFS_INIT_SOURCE, build / "init.c")
    inside = f"/{INITRAMFS_BUILD_DIR}"
    _run(
        ["chroot", str(tree), "gcc", "-static", "-Os", "-s", "-o", f"{inside}/init"]
        + [f"{inside}/init.c"],
        step="gcc initramfs init",
    )
    (version,) = [path.name for path in (tree / "lib/modules").iterdir()]
    modules = _module_files(tree, version, arch.initramfs_modules)
    order = "".join(f"{module.name}\n" for module in modules).encode()
    entries: list[tuple[str, int, bytes]] = [
        ("dev", stat.S_IFDIR | 0o755, b""),
        ("root", stat.S_IFDIR | 0o755, b""),
        ("modules", stat.S_IFDIR | 0o755, b""),
        ("init", stat.S_IFREG | 0o755, (build / "init").read_bytes()),
        ("modules/order", stat.S_IFREG | 0o644, order),
    ]
    entries += [(f"modules/{m.name}", stat.S_IFREG | 0o644, m.read_bytes()) for m in modules]
    with open(target, "wb") as archive:
        for number, (name, mode, data) in enumerate(entries, start=1):
            archive.write(_cpio_entry(number, name, mode, data))
        # The kernel opens /dev/console for init's output before anything mounts /dev.
        console = _cpio_entry(len(entries) + 1, "dev/console", stat.S_IFCHR | 0o600, b"", (5, 1))
        archive.write(console)
        archive.write(_cpio_entry(0, "TRAILER!!!", 0, b""))
    shutil.rmtree(build)


def _module_files(tree: Path, version: str, wanted: tuple[str, ...]) -> list[Path]:
    """The .ko files of the `wanted` modules and their dependencies, dependencies first."""
    listing = subprocess.run(
        [
            "chroot",
            str(tree),
            "modprobe",
            "-a",
            "--show-depends",
            "-S",
            version,
            *wanted,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if listing.returncode != 0:
        raise ImageError(f"modprobe --show-depends failed: {listing.stderr.strip()}")
    files: list[Path] = []
    for line in listing.stdout.splitlines():
        words = line.split()
        if words[:1] == ["insmod"] and tree / words[1].lstrip("/") not in files:
            files.append(tree / words[1].lstrip("/"))
    return files


def _cpio_entry(
    number: int, name: str, mode: int, data: bytes, device: tuple[int, int] = (0, 0)
) -> bytes:
    """One member of a "newc" cpio archive, the initramfs format the kernel unpacks."""
    encoded = name.encode() + b"\0"
    fields = (number, mode, 0, 0, 1, 0, len(data), 0, 0, *device, len(encoded), 0)
    header = b"070701" + b"".join(b"%08X" % field for field in fields)
    return _padded(header + encoded) + _padded(data)


def _padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def _uncompressed(vmlinuz: bytes) -> bytes:
    """The ELF kernel inside a bzImage when QEMU can boot it (Debian's is xz-compressed).

    Under software emulation the kernel's own decompressor takes about 10 s of each boot;
    QEMU loads the ELF image directly (its PVH entry point) and that time is gone.
    """
    start = vmlinuz.find(XZ_MAGIC)
    if start < 0:
        return vmlinuz
    try:
        kernel = lzma.LZMADecompressor().decompress(vmlinuz[start:])
    except lzma.LZMAError:
        return vmlinuz
    return kernel if kernel.startswith(ELF_MAGIC) else vmlinuz


def _make_root_disk(tree: Path, target: Path) -> None:
    used_bytes = sum(path.lstat().st_size for path in tree.rglob("*") if not path.is_symlink())
    size_mib = (used_bytes // MIB) * 5 // 4 + SPARE_MIB
    size_mib = -(-size_mib // SIZE_STEP_MIB) * SIZE_STEP_MIB
    raw = target.with_suffix(".raw")
    _run(
        ["mkfs.ext4", "-q", "-L", "coprsite-root", "-d", str(tree), str(raw), f"{size_mib}M"],
        step="mkfs.ext4",
    )
    _run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(target)], step="qemu-img convert")
    raw.unlink()


def _run(argv: list[str], *, step: str) -> None:
    """Run one step; its messages go to stderr with the seconds since it started, so that
    the log says where a slow build spent its time (mmdebstrap's downloading, extracting,
    installing)."""
    started = time.monotonic()
    tail: collections.deque[str] = collections.deque(maxlen=5)
    # The tools' chatter goes to stderr: stdout's last line is the image directory.
    with subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=sys.stderr, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stderr is not None
        for line in process.stderr:
            tail.append(line.strip())
            print(f"{step} {time.monotonic() - started:4.0f} s: {line.rstrip()}", file=sys.stderr)
    if process.returncode != 0:
        raise ImageError(f"{step} failed (exit {process.returncode}): {' | '.join(tail)}")
    print(f"{step}: {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
