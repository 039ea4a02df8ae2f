"""Run hostile build code in a bubblewrap sandbox, streaming its output and obeying cancel."""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from builders.failures import BuildCanceled, BuildFailure, BuildTimeout
from builders.limits import (
    Cgroup,
    ResourceLimits,
    exceeded_reason,
    make_workspace_disk,
    mechanism,
    open_cgroup,
    priority_prefix,
    remove_workspace_disk,
    rlimit_prefix,
)
from builders.livelog import LiveLog
from builders.network import OutboundNetwork, host_network_allowed, resolv_conf

# Where the job's workspace appears inside the sandbox; also the build's HOME.
BUILD_DIR = "/build"
# Mount points inside the sandbox, not files on the host: /tmp is a fresh tmpfs and
# /var/tmp (rpmbuild's scripts) a directory of the workspace.
SANDBOX_TMP = "/tmp"  # noqa: S108 - a mount point inside the sandbox
SANDBOX_VAR_TMP = "/var/tmp"  # noqa: S108 - a mount point inside the sandbox
HOSTNAME = "coprsite-builder"
BUILD_USER = "builder"
DEFAULT_BUILD_UID = 65534

# The portal asks "cancel?" this often; the brief promises a kill within seconds.
POLL_SECONDS = 0.5
# Lines kept in memory for failure reasons; the whole output is in builder-live.log.
TAIL_LINES = 2000
# One "line" of hostile output without a newline must not eat the worker's memory.
LINE_LIMIT_BYTES = 64 * 1024
# After a kill, how long the output reader may take to drain the pipe.
READER_GRACE_SECONDS = 5
# A job past its time limit is stopped as Copr's builders stop mock (GentlyTimeoutedPopen):
# INT, then TERM, then KILL, each TIMEOUT_SIGNAL_SECONDS after the last, and each announced
# in the log with Copr's line, which scripts grep for ("!! Copr timeout => sending INT").
TIMEOUT_SIGNALS = (("INT", signal.SIGINT), ("TERM", signal.SIGTERM), ("KILL", signal.SIGKILL))
TIMEOUT_SIGNAL_SECONDS = 10

_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"
# The first output line of a sandbox that never started: the tools in front of the command.
_START_FAILURES = ("bwrap: ", "setpriv: ", "unshare: ", "prlimit: ", "RTNETLINK", "/bin/sh: ")
# Top-level names that are symlinks into /usr on merged-/usr systems, real dirs elsewhere.
_ROOT_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# The part of /etc that compilers, rpmbuild and curl need. Everything else there (shadow,
# ssh host keys, the portal's or the database's config) stays invisible.
_ETC_ENTRIES = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "nsswitch.conf",
    "localtime",
    "os-release",
    "rpm",
    "services",
    "protocols",
    "ssl/certs",
    "ssl/openssl.cnf",
    "ca-certificates",
    "pki/ca-trust/extracted",
    "pki/tls/certs",
    "pki/tls/openssl.cnf",
    "crypto-policies",
)
# Name resolution only matters, and is only shown, when the job has network.
_NETWORK_ETC_ENTRIES = ("resolv.conf", "gai.conf", "host.conf")


def build_identity() -> tuple[int, int]:
    """The unprivileged uid and gid builds run as when the runner is root."""
    uid = int(os.environ.get("COPRSITE_BUILD_UID", DEFAULT_BUILD_UID))
    gid = int(os.environ.get("COPRSITE_BUILD_GID", uid))
    if uid == 0 or gid == 0:
        raise ValueError("COPRSITE_BUILD_UID/GID must not be 0: builds never run as root")
    return uid, gid


def _runs_as_root() -> bool:
    return os.geteuid() == 0


class Workspace:
    """A private directory per job; only its `build` part is visible (read-write) inside."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.build_dir = root / "build"
        self.var_tmp = root / "vartmp"
        self.etc = root / "etc"
        # Never bound into the sandbox: results are checked here before they are published.
        self.staging = root / "staging"
        self.limits = ResourceLimits()
        self.disk_mounted = False
        self._limits_logged = False
        self._network_logged = False
        # CPU seconds the job's earlier sandbox runs used (a source task has several).
        self.cpu_seconds_used = 0.0

    @classmethod
    def create(cls, *, base: str | None = None, name: str = "") -> Workspace:
        """Make a fresh workspace under `base`, else $COPRSITE_BUILD_WORKDIR, else the temp dir.

        Its directory is `coprsite-build-<name>-<random>`; `name` must be a plain name.
        """
        root = Path(tempfile.mkdtemp(prefix=_workspace_prefix(name), dir=_workspaces_base(base)))
        # The build uid has to reach build/ and etc/ to bind them, but may not list root.
        root.chmod(0o711)
        workspace = cls(root)
        for directory in (workspace.build_dir, workspace.var_tmp, workspace.etc):
            directory.mkdir()
        workspace.staging.mkdir(mode=0o700)
        workspace._write_identity_files()
        workspace.hand_over()
        return workspace

    @classmethod
    def named(cls, *, base: str | None, name: str) -> list[Workspace]:
        """The workspaces `create` made under `base` for `name` (a job's, left behind)."""
        if not name:
            return []  # an unnamed workspace cannot be told from another job's
        pattern = f"{_workspace_prefix(name)}*"
        return [cls(path) for path in _workspaces_base(base).glob(pattern) if path.is_dir()]

    def _write_identity_files(self) -> None:
        uid, gid = build_identity() if _runs_as_root() else (os.geteuid(), os.getegid())
        # Tools look the build user up (whoami, rpmbuild's file owners); the host's
        # /etc/passwd would show every account of the worker instead.
        (self.etc / "passwd").write_text(
            "root:x:0:0:root:/root:/bin/sh\n"
            f"{BUILD_USER}:x:{uid}:{gid}:build user:{BUILD_DIR}:/bin/bash\n"
        )
        (self.etc / "group").write_text(f"root:x:0:\n{BUILD_USER}:x:{gid}:\n")
        # rpmbuild warns "Could not canonicalize hostname" when the name does not resolve.
        (self.etc / "hosts").write_text(
            f"127.0.0.1 localhost {HOSTNAME}\n::1 localhost ip6-localhost\n"
        )
        for path in self.etc.iterdir():
            path.chmod(0o644)

    def hand_over(self) -> None:
        """Give the writable parts, and what was copied there, to the build uid (as root)."""
        if not _runs_as_root():
            return
        uid, gid = build_identity()
        for top in (self.build_dir, self.var_tmp):
            for path in _walk_no_follow(top):
                os.lchown(path, uid, gid)

    def apply_limits(self, limits: ResourceLimits) -> None:
        """Limit every later sandbox run of this job; the disk limit takes effect now.

        Call right after `create`, while build/ is still empty: the sized filesystem is
        mounted over it.
        """
        self.limits = limits
        if limits.disk_mib:
            self.disk_mounted = make_workspace_disk(
                self.root / "disk.img", self.build_dir, limits.disk_mib
            )
            self.hand_over()

    def log_limits_once(self, log: LiveLog, cgroup: Cgroup | None) -> None:
        """Say in the job's log which limits hold and what enforces them."""
        if not self._limits_logged:
            self._limits_logged = True
            log.info(mechanism(self.limits, cgroup=cgroup, disk_mounted=self.disk_mounted))

    def log_network_once(self, log: LiveLog, *, isolated: bool) -> None:
        """Say in the job's log what the job's network reaches."""
        if not self._network_logged:
            self._network_logged = True
            log.info(
                "Network: outbound only, through slirp4netns in the job's own namespace "
                "(no loopback, private, link-local or builder addresses)"
                if isolated
                else "Network: the builder's own (COPRSITE_BUILD_HOST_NETWORK, development only)"
            )

    def free_disk_bytes(self) -> int | None:
        """Room left on the job's sized filesystem (None when it has none)."""
        if not self.disk_mounted:
            return None
        stats = os.statvfs(self.build_dir)
        return stats.f_bavail * stats.f_frsize

    def cleanup(self) -> None:
        """Remove the workspace, whatever modes the build left behind."""
        # Also for a workspace a crashed runner left behind, whose disk is still mounted.
        remove_workspace_disk(self.build_dir)
        _force_rmtree(self.root)


def _workspaces_base(base: str | None) -> Path:
    return Path(base or os.environ.get("COPRSITE_BUILD_WORKDIR") or tempfile.gettempdir())


def _workspace_prefix(name: str) -> str:
    if "/" in name or name in {".", ".."}:
        raise ValueError(f"invalid workspace name: {name!r}")
    return f"coprsite-build-{name}-" if name else "coprsite-build-"


def _walk_no_follow(top: Path) -> Iterator[Path]:
    yield top
    for directory, dirnames, filenames in os.walk(top, followlinks=False):
        for name in dirnames + filenames:
            yield Path(directory, name)


def _force_rmtree(root: Path) -> None:
    # A build may leave read-only dirs (BUILDROOT trees); as non-root those block deletion.
    def make_writable_and_retry(function: Callable[..., object], path: str, _exc: object) -> None:
        if not os.path.lexists(path):
            return  # a sweep removing the same workspace got there first
        parent = os.path.dirname(path)
        if not os.path.islink(parent):
            os.chmod(parent, stat.S_IRWXU)
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, stat.S_IRWXU)
        function(path)

    if root.exists():
        shutil.rmtree(root, onerror=make_writable_and_retry)


def _root_link_args() -> list[str]:
    args: list[str] = []
    for name in _ROOT_LINKS:
        if os.path.islink(name):
            args += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            args += ["--ro-bind", name, name]
    return args


def _etc_args(workspace: Workspace, network: bool, namespaced: bool) -> list[str]:
    entries = _ETC_ENTRIES + (_NETWORK_ETC_ENTRIES if network else ())
    own = ["passwd", "group", "hosts"]
    if namespaced:
        # The host's resolver may well be on its loopback, out of the build's reach.
        entries = tuple(entry for entry in entries if entry != "resolv.conf")
        (workspace.etc / "resolv.conf").write_text(resolv_conf())
        (workspace.etc / "resolv.conf").chmod(0o644)
        own.append("resolv.conf")
    args: list[str] = []
    for entry in entries:
        args += ["--ro-bind-try", f"/etc/{entry}", f"/etc/{entry}"]
    for name in own:
        args += ["--ro-bind", str(workspace.etc / name), f"/etc/{name}"]
    args += ["--symlink", "../proc/self/mounts", "/etc/mtab"]
    return args


def sandbox_argv(
    command: Sequence[str],
    workspace: Workspace,
    *,
    network: bool,
    read_only_binds: Sequence[tuple[str, str]] = (),
    namespace: OutboundNetwork | None = None,
    cgroup: Cgroup | None = None,
) -> list[str]:
    """The full command line that runs `command` inside the sandbox of `workspace`.

    `read_only_binds` are extra (host path, sandbox path) pairs, e.g. the RPM database.
    With `network`, the sandbox uses the network namespace `namespace` prepares (or, when
    the builder's operator allowed it for development, the host's network).
    """
    prefix: list[str] = []
    if cgroup is not None:
        prefix += cgroup.join_prefix()
    if namespace is not None:
        prefix += namespace.prefix()
    if _runs_as_root():
        uid, gid = build_identity()
        # Drop root before bwrap starts: bwrap then builds its own user namespace as an
        # ordinary user, and nothing in the sandbox ever had root's capabilities.
        prefix += [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={gid}",
            "--clear-groups",
            "--no-new-privs",
            "--",
        ]
    limits = workspace.limits
    prefix += priority_prefix(cgroup)
    prefix += rlimit_prefix(limits, cgroup=cgroup, disk_mounted=workspace.disk_mounted)
    argv = [
        "bwrap",
        "--unshare-all",
        "--unshare-user",
        "--unshare-pid",
        # A nested user namespace would give the build capabilities inside it; no build
        # needs that and it is a common first step of kernel exploits.
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--hostname",
        HOSTNAME,
    ]
    if network and (namespace is not None or host_network_allowed()):
        # Shares the namespace the sandbox starts in: the job's own one (see
        # builders/network.py), or the host's where the operator allowed that.
        argv.append("--share-net")
    argv += ["--ro-bind", "/usr", "/usr", *_root_link_args()]
    argv += _etc_args(workspace, network, namespace is not None)
    argv += ["--proc", "/proc", "--dev", "/dev"]
    if limits.disk_mib:
        # /tmp and /var/tmp share one tmpfs of the job's disk size.
        argv += ["--size", str(limits.disk_mib * 1024 * 1024), "--tmpfs", SANDBOX_TMP]
        argv += ["--bind", str(workspace.build_dir), BUILD_DIR]
        argv += ["--symlink", SANDBOX_TMP, SANDBOX_VAR_TMP]
    else:
        argv += ["--tmpfs", SANDBOX_TMP, "--bind", str(workspace.build_dir), BUILD_DIR]
        argv += ["--bind", str(workspace.var_tmp), SANDBOX_VAR_TMP]
    for source, target in read_only_binds:
        argv += ["--ro-bind", source, target]
    argv += ["--clearenv", "--setenv", "HOME", BUILD_DIR, "--setenv", "PATH", _PATH]
    argv += ["--setenv", "LANG", "C.UTF-8", "--setenv", "USER", BUILD_USER]
    argv += ["--chdir", BUILD_DIR, "--", *command]
    return prefix + argv


@dataclass
class Watchdog:
    """The stop conditions of one job: a cancel request and the job's time limit."""

    should_cancel: Callable[[], bool]
    timeout: int
    activity: str = "build"  # named in the timeout reason
    started: float = field(default_factory=time.monotonic)

    def remaining(self) -> float:
        """Seconds left of the job's time limit."""
        return self.timeout - (time.monotonic() - self.started)

    def check(self) -> None:
        """Raise BuildCanceled or BuildFailure when the job has to stop now."""
        if self.should_cancel():
            raise BuildCanceled()
        if self.remaining() <= 0:
            raise BuildTimeout(f"{self.activity} timed out after {self.timeout} s")


@dataclass
class RunOutcome:
    """How a command ended, with the last lines it printed."""

    exit_code: int
    lines: list[str]


def _pump(stream: IO[bytes], log: LiveLog, tail: deque[str]) -> None:
    try:
        for raw in iter(lambda: stream.readline(LINE_LIMIT_BYTES), b""):
            log.write(raw)
            tail.append(raw.decode("utf-8", "replace").rstrip("\n"))
    except (OSError, ValueError):
        # The pipe or the log was closed under us after READER_GRACE_SECONDS; the job
        # has ended already and its result does not depend on the rest of the output.
        return


def _kill_tree(process: subprocess.Popen[bytes]) -> None:
    # The process group holds setpriv/bwrap; bwrap's --die-with-parent and the PID
    # namespace take everything inside the sandbox down with it, even processes that
    # started their own session.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@dataclass
class Confinement:
    """What a sandboxed command runs in besides bwrap: its cgroup and network namespace."""

    limits: ResourceLimits
    cgroup: Cgroup | None = None
    network: OutboundNetwork | None = None
    cpu_seconds_before: float = 0.0  # used by the job's earlier runs

    @property
    def pass_fds(self) -> tuple[int, ...]:
        return self.network.pass_fds if self.network is not None else ()

    def started(self, pid: int) -> None:
        """Finish what needs the command's pid (attach the network)."""
        if self.network is not None:
            self.network.attach(pid)

    def check(self) -> None:
        """Raise BuildFailure when the job's processes together used up the CPU time."""
        if self.cgroup is None or not self.limits.cpu_seconds:
            return
        used = self.cgroup.cpu_seconds()
        if used is not None and self.cpu_seconds_before + used > self.limits.cpu_seconds:
            raise BuildFailure(
                f"the build exceeded its CPU time limit of {self.limits.cpu_seconds} s"
            )

    def close(self) -> None:
        """Stop the network stack and remove the cgroup with anything left in it."""
        if self.network is not None:
            self.network.close()
        if self.cgroup is not None:
            self.cgroup.destroy()


def run_streamed(
    argv: Sequence[str],
    *,
    log: LiveLog,
    watchdog: Watchdog,
    confinement: Confinement | None = None,
) -> RunOutcome:
    """Run `argv` in its own process group, copy its output into `log` line by line.

    Polls the watchdog (and the confinement's CPU time) every POLL_SECONDS; on cancel,
    timeout or CPU limit the whole process group is killed and BuildCanceled /
    BuildFailure is raised.
    """
    watchdog.check()
    confinement = confinement or Confinement(ResourceLimits())
    process = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # Nothing of the worker's environment (database URL, secret key) reaches the
        # tools; close_fds (the default) keeps its open files (the database) out too.
        env={"PATH": _PATH, "LANG": "C.UTF-8"},
        pass_fds=confinement.pass_fds,
    )
    assert process.stdout is not None
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    reader = threading.Thread(target=_pump, args=(process.stdout, log, tail), daemon=True)
    reader.start()
    try:
        confinement.started(process.pid)
        while process.poll() is None:
            _wait_for_exit(process, POLL_SECONDS)
            if process.poll() is None:
                _check_or_kill(process, watchdog, confinement, log)
    finally:
        if process.returncode is None:
            _kill_tree(process)
        reader.join(timeout=READER_GRACE_SECONDS)
        if not reader.is_alive():
            process.stdout.close()
    return RunOutcome(process.returncode, list(tail))


def _wait_for_exit(process: subprocess.Popen[bytes], seconds: float) -> None:
    """Return when the process exits, or after `seconds`.

    Popen.wait(timeout) polls with sleeps of up to 50 ms, so every build would end up to
    that much late; a pidfd wakes up the moment the process is gone.
    """
    try:
        descriptor = os.pidfd_open(process.pid)
    except (AttributeError, OSError):  # no pidfd (old kernel), or the process is gone
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=seconds)
        return
    try:
        select.select([descriptor], [], [], seconds)
    finally:
        os.close(descriptor)


def _check_or_kill(
    process: subprocess.Popen[bytes], watchdog: Watchdog, confinement: Confinement, log: LiveLog
) -> None:
    try:
        watchdog.check()
        confinement.check()
    except BuildTimeout:
        _stop_at_timeout(process, log)
        raise
    except (BuildCanceled, BuildFailure):
        _kill_tree(process)
        raise


def _stop_at_timeout(process: subprocess.Popen[bytes], log: LiveLog) -> None:
    for name, number in TIMEOUT_SIGNALS:
        log.write(f" !! Copr timeout => sending {name}\n".encode())
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, number)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=TIMEOUT_SIGNAL_SECONDS)
            return


def run_sandboxed(
    command: Sequence[str],
    workspace: Workspace,
    *,
    network: bool,
    log: LiveLog,
    watchdog: Watchdog,
    read_only_binds: Sequence[tuple[str, str]] = (),
) -> RunOutcome:
    """Run `command` inside the sandbox; see `run_streamed` for output and stopping.

    Applies the workspace's limits; a command that failed because it ran into one raises
    BuildFailure naming that limit.
    """
    limits = workspace.limits
    confinement = Confinement(limits, cpu_seconds_before=workspace.cpu_seconds_used)
    try:
        if limits != ResourceLimits():
            confinement.cgroup = open_cgroup(limits)
        workspace.log_limits_once(log, confinement.cgroup)
        if network and not host_network_allowed():
            confinement.network = OutboundNetwork()
        if network:
            workspace.log_network_once(log, isolated=confinement.network is not None)
        argv = sandbox_argv(
            command,
            workspace,
            network=network,
            read_only_binds=read_only_binds,
            namespace=confinement.network,
            cgroup=confinement.cgroup,
        )
        outcome = run_streamed(argv, log=log, watchdog=watchdog, confinement=confinement)
        if outcome.exit_code != 0:
            reason = exceeded_reason(
                limits,
                cgroup=confinement.cgroup,
                exit_code=outcome.exit_code,
                lines=outcome.lines,
                workspace_free_bytes=workspace.free_disk_bytes(),
                cpu_seconds_before=confinement.cpu_seconds_before,
            )
            if reason:
                raise BuildFailure(reason)
    finally:
        if confinement.cgroup is not None:
            workspace.cpu_seconds_used += confinement.cgroup.cpu_seconds() or 0.0
        confinement.close()
    first = outcome.lines[0] if outcome.lines else ""
    if outcome.exit_code != 0 and first.startswith(_START_FAILURES):
        raise BuildFailure(f"the build sandbox could not start: {first}")
    return outcome
