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

from builders.failures import BuildCanceled, BuildFailure
from builders.livelog import LiveLog

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

_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"
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

    @classmethod
    def create(cls, *, base: str | None = None, name: str = "") -> Workspace:
        """Make a fresh workspace under `base`, else $COPRSITE_BUILD_WORKDIR, else the temp dir.

        Its directory is `coprsite-build-<name>-<random>`; `name` must be a plain name.
        """
        if "/" in name or name in {".", ".."}:
            raise ValueError(f"invalid workspace name: {name!r}")
        base = base or os.environ.get("COPRSITE_BUILD_WORKDIR") or None
        prefix = f"coprsite-build-{name}-" if name else "coprsite-build-"
        root = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
        # The build uid has to reach build/ and etc/ to bind them, but may not list root.
        root.chmod(0o711)
        workspace = cls(root)
        for directory in (workspace.build_dir, workspace.var_tmp, workspace.etc):
            directory.mkdir()
        workspace.staging.mkdir(mode=0o700)
        workspace._write_identity_files()
        workspace.hand_over()
        return workspace

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

    def cleanup(self) -> None:
        """Remove the workspace, whatever modes the build left behind."""
        _force_rmtree(self.root)


def _walk_no_follow(top: Path) -> Iterator[Path]:
    yield top
    for directory, dirnames, filenames in os.walk(top, followlinks=False):
        for name in dirnames + filenames:
            yield Path(directory, name)


def _force_rmtree(root: Path) -> None:
    # A build may leave read-only dirs (BUILDROOT trees); as non-root those block deletion.
    def make_writable_and_retry(function: Callable[..., object], path: str, _exc: object) -> None:
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


def _etc_args(workspace: Workspace, network: bool) -> list[str]:
    entries = _ETC_ENTRIES + (_NETWORK_ETC_ENTRIES if network else ())
    args: list[str] = []
    for entry in entries:
        args += ["--ro-bind-try", f"/etc/{entry}", f"/etc/{entry}"]
    for name in ("passwd", "group", "hosts"):
        args += ["--ro-bind", str(workspace.etc / name), f"/etc/{name}"]
    args += ["--symlink", "../proc/self/mounts", "/etc/mtab"]
    return args


def sandbox_argv(
    command: Sequence[str],
    workspace: Workspace,
    *,
    network: bool,
    read_only_binds: Sequence[tuple[str, str]] = (),
) -> list[str]:
    """The full command line that runs `command` inside the sandbox of `workspace`.

    `read_only_binds` are extra (host path, sandbox path) pairs, e.g. the RPM database.
    """
    prefix: list[str] = []
    if _runs_as_root():
        uid, gid = build_identity()
        # Drop root before bwrap starts: bwrap then builds its own user namespace as an
        # ordinary user, and nothing in the sandbox ever had root's capabilities.
        prefix = [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={gid}",
            "--clear-groups",
            "--no-new-privs",
            "--",
        ]
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
    if network:
        argv.append("--share-net")
    argv += ["--ro-bind", "/usr", "/usr", *_root_link_args(), *_etc_args(workspace, network)]
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", SANDBOX_TMP]
    argv += ["--bind", str(workspace.build_dir), BUILD_DIR]
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
            raise BuildFailure(f"{self.activity} timed out after {self.timeout} s")


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


def run_streamed(argv: Sequence[str], *, log: LiveLog, watchdog: Watchdog) -> RunOutcome:
    """Run `argv` in its own process group, copy its output into `log` line by line.

    Polls the watchdog every POLL_SECONDS; on cancel or timeout the whole process group
    is killed and BuildCanceled / BuildFailure is raised.
    """
    watchdog.check()
    process = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # Nothing of the worker's environment (database URL, secret key) reaches the
        # tools; close_fds (the default) keeps its open files (the database) out too.
        env={"PATH": _PATH, "LANG": "C.UTF-8"},
    )
    assert process.stdout is not None
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    reader = threading.Thread(target=_pump, args=(process.stdout, log, tail), daemon=True)
    reader.start()
    try:
        while process.poll() is None:
            _wait_for_exit(process, POLL_SECONDS)
            if process.poll() is None:
                _check_or_kill(process, watchdog)
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


def _check_or_kill(process: subprocess.Popen[bytes], watchdog: Watchdog) -> None:
    try:
        watchdog.check()
    except (BuildCanceled, BuildFailure):
        _kill_tree(process)
        raise


def run_sandboxed(
    command: Sequence[str],
    workspace: Workspace,
    *,
    network: bool,
    log: LiveLog,
    watchdog: Watchdog,
    read_only_binds: Sequence[tuple[str, str]] = (),
) -> RunOutcome:
    """Run `command` inside the sandbox; see `run_streamed` for output and stopping."""
    argv = sandbox_argv(command, workspace, network=network, read_only_binds=read_only_binds)
    outcome = run_streamed(argv, log=log, watchdog=watchdog)
    first = outcome.lines[0] if outcome.lines else ""
    if outcome.exit_code != 0 and first.startswith(("bwrap: ", "setpriv: ")):
        raise BuildFailure(f"the build sandbox could not start: {first}")
    return outcome
