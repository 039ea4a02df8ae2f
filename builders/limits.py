"""Resource limits of one job: processes, memory, CPU time and disk.

Memory and processes are limited per job with a cgroup (v2 when the host has a usable
unified hierarchy, else the v1 `memory`, `pids`, `cpu` and `cpuacct` hierarchies). The same
cgroup gives the job a CPU weight well below the service's and a CPU quota, so that a build
cannot starve the portal on its host (where the `cpu` controller is missing, `nice` does
what it can for the weight and there is no quota). CPU time is
the sum over the job's processes, read from the cgroup and enforced by the runner's poll,
with RLIMIT_CPU per process as a backstop. Without cgroups the fallback is RLIMIT_NPROC,
RLIMIT_AS and RLIMIT_CPU per process (weaker: NPROC counts every process of the build uid,
AS is address space, not memory used). Disk is a size-limited ext4 image mounted as the
workspace (root only) plus a sized tmpfs for /tmp; without root only RLIMIT_FSIZE per file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shlex
import signal
import stat
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builders.failures import BuildFailure

MIB = 1024 * 1024
CGROUP_ROOT = Path("/sys/fs/cgroup")
# An operator may delegate a cgroup to the runner (e.g. systemd's Delegate=yes); jobs then
# get their groups below it instead of below the runner's own group.
CGROUP_PARENT_ENV = "COPRSITE_CGROUP_PARENT"
CGROUP_PREFIX = "coprsite-job-"
# Seconds to wait for a cgroup's processes to be gone before it is removed.
CGROUP_DRAIN_SECONDS = 5
# An empty job group this old was left by a runner that died (see _remove_stale_groups).
STALE_GROUP_SECONDS = 60
# Messages of tools that ran out of room, whatever the language of the rest.
_NO_SPACE = ("No space left on device", "Disk quota exceeded", "File too large")
# ...and of memory, where RLIMIT_AS (not the OOM killer of a cgroup) stopped them.
_NO_MEMORY = ("Cannot allocate memory", "MemoryError", "out of memory", "bad_alloc")
# A job's CPU weight, a tenth of the default every other group (and, on v1, every process
# of the parent group: the web and worker processes) has. Under contention the kernel then
# gives the portal ten times what the whole job gets, however many processes the job forks.
CPU_WEIGHT_V2 = 10  # cpu.weight, default 100
CPU_SHARES_V1 = 102  # cpu.shares, default 1024
# Period of the CPU quota: the kernel's default; the quota is a share of each period.
CPU_PERIOD_USEC = 100_000
# Niceness of a job's processes where no cgroup can weigh them.
FALLBACK_NICENESS = 10


@dataclass(frozen=True)
class ResourceLimits:
    """Per-job limits; 0 means "no limit" for that resource."""

    processes: int = 0
    memory_mib: int = 0
    cpu_seconds: int = 0
    disk_mib: int = 0
    # CPU time per second of wall clock, in percent of one CPU (150: one and a half CPUs).
    cpu_percent: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ResourceLimits:
        """Read the job spec's `limits`; unknown keys are ignored, bad values refused."""
        known = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, int] = {}
        for key, value in (data or {}).items():
            if key not in known:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise BuildFailure(f"the job's limit {key} is not a whole number >= 0: {value!r}")
            values[key] = value
        return cls(**values)

    def describe(self) -> str:
        """The limits as a person reads them."""
        parts = []
        if self.processes:
            parts.append(f"{self.processes} processes")
        if self.memory_mib:
            parts.append(f"memory {self.memory_mib} MiB")
        if self.cpu_seconds:
            parts.append(f"CPU time {self.cpu_seconds} s")
        if self.disk_mib:
            parts.append(f"disk {self.disk_mib} MiB")
        if self.cpu_percent:
            parts.append(f"CPU {self.cpu_percent}% of one CPU")
        return ", ".join(parts) or "none"

    def cpu_quota_usec(self) -> int:
        """The CPU time the job may use per CPU_PERIOD_USEC (0: no quota)."""
        # The kernel refuses a quota under 1 ms.
        return max(1000, CPU_PERIOD_USEC * self.cpu_percent // 100) if self.cpu_percent else 0


class Cgroup:
    """One job's cgroup in one or more hierarchies; `kind` names the mechanism for the log."""

    kind = "cgroup"

    def __init__(self, directories: dict[str, Path], limits: ResourceLimits) -> None:
        self.directories = directories  # controller -> the job's directory
        self.limits = limits

    def join_prefix(self) -> list[str]:
        """A command prefix that moves itself into the cgroup, then runs the rest.

        The move happens before the job's first instruction, so no child escapes it.
        """
        files = sorted({str(d / "cgroup.procs") for d in self.directories.values()})
        moves = " && ".join(f"echo $$ > {shlex.quote(path)}" for path in files)
        return ["/bin/sh", "-c", f'{moves} && exec "$@"', "coprsite-cgroup"]

    def cpu_seconds(self) -> float | None:
        """CPU time used by every process of the job so far, when the cgroup counts it."""
        raise NotImplementedError

    def counts_cpu(self) -> bool:
        return self.cpu_seconds() is not None

    def controls_cpu(self) -> bool:
        """Whether the group has the `cpu` controller: a CPU weight and quota."""
        raise NotImplementedError

    def cpu_throttling(self) -> str:
        """How the group holds the job's CPU use, for the log."""
        raise NotImplementedError

    def memory_exceeded(self) -> bool:
        """Whether the kernel killed a process of the job for the memory limit."""
        raise NotImplementedError

    def processes_exceeded(self) -> bool:
        """Whether the job tried to have more processes than allowed."""
        raise NotImplementedError

    def destroy(self) -> None:
        """Kill whatever is left in the cgroup and remove it."""
        for directory in set(self.directories.values()):
            _kill_members(directory)
            with contextlib.suppress(OSError):
                directory.rmdir()


class CgroupV2(Cgroup):
    kind = "cgroup v2"

    def setup(self) -> None:
        directory = self.directories["memory"]
        if self.limits.memory_mib:
            _write(directory / "memory.max", str(self.limits.memory_mib * MIB))
            with contextlib.suppress(OSError):  # no swap accounting on this host
                _write(directory / "memory.swap.max", "0")
        if self.limits.processes:
            _write(directory / "pids.max", str(self.limits.processes))
        if self.controls_cpu():
            _write(directory / "cpu.weight", str(CPU_WEIGHT_V2))
            quota = self.limits.cpu_quota_usec()
            _write(directory / "cpu.max", f"{quota or 'max'} {CPU_PERIOD_USEC}")

    def controls_cpu(self) -> bool:
        return (self.directories["memory"] / "cpu.max").exists()

    def cpu_throttling(self) -> str:
        return f"cpu.weight {CPU_WEIGHT_V2} (default 100)"

    def cpu_seconds(self) -> float | None:
        stats = _read_keyed(self.directories["memory"] / "cpu.stat")
        return stats["usage_usec"] / 1e6 if "usage_usec" in stats else None

    def memory_exceeded(self) -> bool:
        return _read_keyed(self.directories["memory"] / "memory.events").get("oom_kill", 0) > 0

    def processes_exceeded(self) -> bool:
        return _read_keyed(self.directories["memory"] / "pids.events").get("max", 0) > 0


class CgroupV1(Cgroup):
    kind = "cgroup v1"

    def setup(self) -> None:
        if self.limits.memory_mib:
            memory = self.directories["memory"]
            _write(memory / "memory.limit_in_bytes", str(self.limits.memory_mib * MIB))
            with contextlib.suppress(OSError):  # only with swap accounting
                _write(memory / "memory.memsw.limit_in_bytes", str(self.limits.memory_mib * MIB))
        if self.limits.processes:
            _write(self.directories["pids"] / "pids.max", str(self.limits.processes))
        if self.controls_cpu():
            cpu = self.directories["cpu"]
            _write(cpu / "cpu.shares", str(CPU_SHARES_V1))
            quota = self.limits.cpu_quota_usec()
            _write(cpu / "cpu.cfs_period_us", str(CPU_PERIOD_USEC))
            _write(cpu / "cpu.cfs_quota_us", str(quota or -1))

    def controls_cpu(self) -> bool:
        return "cpu" in self.directories

    def cpu_throttling(self) -> str:
        return f"cpu.shares {CPU_SHARES_V1} (default 1024)"

    def cpu_seconds(self) -> float | None:
        usage = self.directories.get("cpuacct")
        if usage is None:
            return None
        try:
            return int((usage / "cpuacct.usage").read_text()) / 1e9
        except (OSError, ValueError):
            return None

    def memory_exceeded(self) -> bool:
        control = _read_keyed(self.directories["memory"] / "memory.oom_control")
        return control.get("oom_kill", 0) > 0

    def processes_exceeded(self) -> bool:
        return _read_keyed(self.directories["pids"] / "pids.events").get("max", 0) > 0


def _write(path: Path, value: str) -> None:
    with open(path, "w") as handle:
        handle.write(value)


def _read_keyed(path: Path) -> dict[str, int]:
    """A cgroup file of `key value` lines."""
    values: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                values[key] = int(value)
    return values


def _kill_members(directory: Path) -> None:
    deadline = time.monotonic() + CGROUP_DRAIN_SECONDS
    # Processes killed with the sandbox usually leave the group within milliseconds; a
    # fixed 50 ms nap made one build in three wait for nothing on its slot.
    pause = 0.002
    while time.monotonic() < deadline:
        try:
            pids = [int(pid) for pid in (directory / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def _own_cgroup_paths() -> dict[str, str]:
    """controller (or "" for the unified hierarchy) -> this process's cgroup path."""
    paths: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                paths[controller] = path
    return paths


def _parent_directory(hierarchy: Path, own_path: str) -> Path:
    configured = os.environ.get(CGROUP_PARENT_ENV)
    if configured:
        return hierarchy / configured.lstrip("/")
    return hierarchy / own_path.lstrip("/")


def _remove_stale_groups(parent: Path) -> None:
    """Remove empty job groups a killed runner left behind.

    A job joins its group right after making it and the runner removes it at the end, so
    an empty group older than STALE_GROUP_SECONDS belongs to nobody.
    """
    now = time.time()
    for directory in parent.glob(CGROUP_PREFIX + "*"):
        with contextlib.suppress(OSError):
            empty = not (directory / "cgroup.procs").read_text().strip()
            if empty and now - directory.stat().st_mtime > STALE_GROUP_SECONDS:
                directory.rmdir()


def _make_group(parent: Path, name: str) -> Path | None:
    _remove_stale_groups(parent)
    directory = parent / name
    try:
        directory.mkdir()
    except OSError:
        return None
    return directory


def _cgroup_v2(limits: ResourceLimits, name: str) -> Cgroup | None:
    if not (CGROUP_ROOT / "cgroup.controllers").exists():
        return None
    parent = _parent_directory(CGROUP_ROOT, _own_cgroup_paths().get("", "/"))
    wanted = {"memory", "pids", "cpu"}
    subtree = parent / "cgroup.subtree_control"
    enabled = set(subtree.read_text().split()) if subtree.exists() else set()
    if not wanted <= enabled:
        # Only works where the parent has no processes of its own (cgroup v2's rule);
        # otherwise the operator delegates an empty group with COPRSITE_CGROUP_PARENT.
        for controller in sorted(wanted - enabled):  # one by one: cpu may be missing
            with contextlib.suppress(OSError):
                _write(subtree, f"+{controller}")
    directory = _make_group(parent, name)
    if directory is None:
        return None
    if not (directory / "memory.max").exists() or not (directory / "pids.max").exists():
        with contextlib.suppress(OSError):
            directory.rmdir()
        return None
    group = CgroupV2({"memory": directory}, limits)
    try:
        group.setup()
    except OSError:
        group.destroy()
        return None
    return group


def _cgroup_v1(limits: ResourceLimits, name: str) -> Cgroup | None:
    own = _own_cgroup_paths()
    directories: dict[str, Path] = {}
    made: dict[Path, Path] = {}  # hierarchy -> the job's directory in it
    for controller in ("memory", "pids", "cpu", "cpuacct"):
        hierarchy = CGROUP_ROOT / controller
        if not (hierarchy / "cgroup.procs").exists():
            if controller in ("cpu", "cpuacct"):
                # CPU time then falls back to RLIMIT_CPU per process, the weight to nice.
                continue
            break
        # Most hosts mount `cpu` and `cpuacct` together, with a link from each name.
        mounted = hierarchy.resolve()
        if mounted in made:
            directories[controller] = made[mounted]
            continue
        directory = _make_group(_parent_directory(hierarchy, own.get(controller, "/")), name)
        if directory is None:
            if controller in ("cpu", "cpuacct"):
                continue
            break
        directories[controller] = made[mounted] = directory
    if "memory" not in directories or "pids" not in directories:
        for directory in set(directories.values()):
            with contextlib.suppress(OSError):
                directory.rmdir()
        return None
    group = CgroupV1(directories, limits)
    try:
        group.setup()
    except OSError:
        group.destroy()
        return None
    return group


def open_cgroup(limits: ResourceLimits) -> Cgroup | None:
    """A fresh cgroup with `limits`, or None when this host lets the runner make none."""
    if os.geteuid() != 0 and not os.environ.get(CGROUP_PARENT_ENV):
        return None
    name = CGROUP_PREFIX + uuid.uuid4().hex[:12]
    try:
        return _cgroup_v2(limits, name) or _cgroup_v1(limits, name)
    except OSError:
        return None


def rlimit_prefix(
    limits: ResourceLimits, *, cgroup: Cgroup | None, disk_mounted: bool
) -> list[str]:
    """`prlimit` options for what the cgroup (or the workspace disk) does not cover."""
    options: list[str] = []
    if limits.cpu_seconds:
        # Per process. The soft limit sends SIGXCPU (so the reason can name it), the hard
        # one a second later SIGKILL. Where the cgroup counts the job's total, the runner's
        # poll stops the job at the limit and RLIMIT_CPU is a backstop a second later: the
        # kernel charges it by ticks, the cgroup by the scheduler's clock, so at the same
        # limit a process could die while the cgroup still read a little under it, and the
        # failure would not name the limit.
        soft = limits.cpu_seconds + (1 if cgroup is not None and cgroup.counts_cpu() else 0)
        options.append(f"--cpu={soft}:{soft + 1}")
    if cgroup is None and limits.processes:
        options.append(f"--nproc={limits.processes}")
    if cgroup is None and limits.memory_mib:
        options.append(f"--as={limits.memory_mib * MIB}")
    if not disk_mounted and limits.disk_mib:
        options.append(f"--fsize={limits.disk_mib * MIB}")
    return ["prlimit", *options, "--"] if options else []


def priority_prefix(cgroup: Cgroup | None) -> list[str]:
    """`nice` for a job whose cgroup cannot weigh its CPU use (or that has no cgroup).

    Weaker than a cgroup's weight: each of the job's processes gets a low priority of its
    own, so a thousand of them still outweigh one web process.
    """
    if cgroup is not None and cgroup.controls_cpu():
        return []
    return ["nice", "-n", str(FALLBACK_NICENESS)]


def mechanism(limits: ResourceLimits, *, cgroup: Cgroup | None, disk_mounted: bool) -> str:
    """One log line naming how each limit is enforced on this builder."""
    if limits == ResourceLimits():
        return "Limits: none"
    parts = []
    if limits.processes or limits.memory_mib:
        parts.append(
            f"processes and memory by {cgroup.kind}"
            if cgroup
            else "processes and memory by RLIMIT_NPROC/RLIMIT_AS per process (no cgroup)"
        )
    if limits.cpu_seconds:
        total = cgroup is not None and cgroup.counts_cpu()
        parts.append(
            "CPU time summed over the job's processes" if total else "CPU time by RLIMIT_CPU"
        )
    if cgroup is not None and cgroup.controls_cpu():
        quota = " and the CPU quota" if limits.cpu_percent else ""
        parts.append(f"CPU weight {cgroup.cpu_throttling()}{quota} by {cgroup.kind}")
    else:
        quota = ", no CPU quota" if limits.cpu_percent else ""
        parts.append(f"CPU weight by nice {FALLBACK_NICENESS}{quota} (no cgroup cpu controller)")
    if limits.disk_mib:
        parts.append(
            "disk by a sized workspace filesystem and /tmp tmpfs"
            if disk_mounted
            else "disk by RLIMIT_FSIZE per file and a sized /tmp tmpfs: this builder cannot "
            "mount a sized workspace filesystem (not root, or no loop device)"
        )
    return f"Limits: {limits.describe()} ({'; '.join(parts)})"


def exceeded_reason(
    limits: ResourceLimits,
    *,
    cgroup: Cgroup | None,
    exit_code: int,
    lines: list[str],
    workspace_free_bytes: int | None,
    cpu_seconds_before: float = 0.0,
) -> str | None:
    """The reason naming the limit a failed command ran into, or None."""
    if cgroup is not None and limits.memory_mib and cgroup.memory_exceeded():
        return f"the build exceeded the memory limit of {limits.memory_mib} MiB"
    # bwrap reports a child killed by signal N as exit 128 + N, Popen as -N.
    signal_number = exit_code - 128 if exit_code > 128 else -exit_code
    if limits.cpu_seconds:
        # A process killed by its RLIMIT_CPU makes its parent (rpmbuild) fail with a plain
        # exit status; the cgroup's total, or the shell's message, still tells.
        used = cgroup.cpu_seconds() if cgroup is not None else None
        if (
            signal_number == signal.SIGXCPU
            or (used is not None and cpu_seconds_before + used >= limits.cpu_seconds)
            or any("CPU time limit exceeded" in line for line in lines)
        ):
            return f"the build exceeded its CPU time limit of {limits.cpu_seconds} s"
    if limits.processes:
        hit = cgroup.processes_exceeded() if cgroup is not None else _fork_failed(lines)
        if hit:
            return f"process limit {limits.processes} reached"
    if limits.disk_mib:
        # Not SIGXFSZ: the download's own size limit (max_download_bytes) sends it too,
        # and its caller names that limit better.
        full = workspace_free_bytes is not None and workspace_free_bytes < MIB
        if full or any(message in line for line in lines for message in _NO_SPACE):
            return f"disk limit of {limits.disk_mib} MiB exceeded (workspace or /tmp)"
    out_of_memory = any(message in line for line in lines for message in _NO_MEMORY)
    if cgroup is None and limits.memory_mib and out_of_memory:
        return f"the build exceeded the memory limit of {limits.memory_mib} MiB"
    return None


def _fork_failed(lines: list[str]) -> bool:
    pattern = re.compile(r"fork: |Cannot fork|Resource temporarily unavailable")
    return any(pattern.search(line) for line in lines)


def make_workspace_disk(image: Path, mount_point: Path, size_mib: int) -> bool:
    """Mount a fresh ext4 filesystem of `size_mib` on `mount_point`.

    The filesystem is a sparse copy of an empty one formatted once per size (see
    _disk_template): copying its few MiB of metadata takes a third of what mkfs.ext4 took
    per job. False where this builder cannot (not root, no loop devices in a container):
    the job then runs with the weaker per-file limit, which its log says.
    """
    if os.geteuid() != 0:
        return False
    template = _disk_template(size_mib)
    _create_private(image)
    steps = [
        ["cp", "--sparse=always", "--reflink=auto", str(template), str(image)]
        if template is not None
        else _mkfs_argv(image, size_mib),
        ["mount", "-o", "loop,nosuid,nodev", str(image), str(mount_point)],
    ]
    for step in steps:
        if not _tool(step):
            image.unlink(missing_ok=True)
            return False
    with contextlib.suppress(OSError):
        (mount_point / "lost+found").rmdir()
    return True


# Empty filesystems to copy, one per size, root's own (DISK_TEMPLATES_ENV overrides where).
DISK_TEMPLATES_ENV = "COPRSITE_DISK_TEMPLATES"
# In the file names: a change to _mkfs_argv's options must not reuse older templates.
DISK_TEMPLATE_FORMAT = "ext4-nojournal-m0"


def _mkfs_argv(image: Path, size_mib: int) -> list[str]:
    # No journal and no reserved blocks: a throw-away filesystem of exactly this size.
    # Given the size, mkfs makes the (sparse) file itself.
    return ["mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal", str(image), f"{size_mib}M"]


def _create_private(path: Path) -> None:
    """An empty file only root reads: the tools then write into it, keeping its mode."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))


def _tool(argv: list[str]) -> bool:
    tools_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}
    return subprocess.run(argv, capture_output=True, env=tools_env, check=False).returncode == 0


def disk_templates_dir() -> Path:
    default = Path(tempfile.gettempdir()) / "coprsite-disk-templates"
    return Path(os.environ.get(DISK_TEMPLATES_ENV) or default)


def _disk_template(size_mib: int) -> Path | None:
    """The empty filesystem of `size_mib` to copy, formatted on first use; None when there
    is no directory that only root can write to keep it in (then each job runs mkfs)."""
    directory = disk_templates_dir()
    with contextlib.suppress(FileExistsError):
        directory.mkdir(mode=0o700, parents=True)
    try:
        info = os.lstat(directory)
    except OSError:
        return None
    # Anyone else able to write there could swap the template for a crafted filesystem.
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022:
        return None
    template = directory / f"{DISK_TEMPLATE_FORMAT}-{size_mib}M.img"
    if template.is_file():
        return template
    # Formatted under a name of its own and renamed: a job never copies a half-made one.
    partial = directory / f".{template.name}.{uuid.uuid4().hex}"
    _create_private(partial)
    if not _tool(_mkfs_argv(partial, size_mib)):
        partial.unlink(missing_ok=True)
        return None
    os.rename(partial, template)
    return template


def remove_workspace_disk(mount_point: Path) -> None:
    """Unmount the job's disk (its loop device goes with it)."""
    if os.path.ismount(mount_point):
        subprocess.run(
            ["umount", "--lazy", str(mount_point)],
            capture_output=True,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            check=False,
        )
