"""The SSH transport: run a job on a static builder host with the OpenSSH client.

One master connection per builder and worker process, kept between its jobs for
MASTER_IDLE_SECONDS; the login shell runs only the command that starts the host's command
agent (sshagent.py), every other command reaches the agent through the master. A job:

    connect unless connected (host key checked against the pool's, never accepted on
    first sight), start the agent unless it runs
    -> check the host (python3, its arch against the declared ones, its runner version)
    -> install the runner copy of this version when the host lacks it
    -> upload the SRPM or uploaded source and the job spec
    -> start the job detached (`python3 -m builders.remote start`): it outlives this
       connection and this worker
    -> tail builder-live.log from the offset the local copy ends at (`... remote tail`);
       when the link breaks, connect again for up to the host's reconnect_seconds and
       tail on from that offset
    -> download the results into a staging directory and check them
    -> only then move them into the result directory
    -> remove the job directory on the host.

Steps before and after the run are retried when SSH itself fails; a job directory runs its
job at most once (builders/remote.py). Another worker reattaches to a running job with
`run(..., attach=True)`: it tails and collects the job, never starts it.
"""

from __future__ import annotations

import atexit
import hashlib
import io
import json
import shlex
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import rpmfile

from builders.arches import native_arches
from builders.livelog import LOG_NAME, LiveLog
from builders.network import EXTRA_BLOCKED_ENV, host_addresses, operator_blocked_networks
from builders.protocol import KIND_SRPM, STATE_SUCCEEDED, JobResult, JobSpec
from builders.remote import (
    CANCEL_COMMAND,
    JOB_FILE,
    JOB_GONE,
    JOB_MISSING,
    RESULT_FILE,
    RESULTS_SUBDIR,
    RUNNER_ERRORS,
    STARTED_FILE,
)
from builders.results import (
    BUILD_LOG,
    CONFIGS_ARCHIVE,
    RESULTS_JSON,
    ROOT_LOG,
    SUCCESS_FILE,
    clear_previous_attempt,
    mark_success,
    publish,
    safe_file_name,
    write_json,
)
from builders.srpm import BadRpm, NotAnSrpm, read_rpm_nevra, read_srpm_header
from builders.transports import ArchMismatch, BuilderLost, BuilderRefused
from builders.transports.sshagent_client import AgentCommand

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # the builders/ package
BUNDLED_LIBRARIES = (rpmfile,)  # read RPM headers (builders/srpm.py)
MIN_PYTHON = (3, 9)
KEEP_RUNNER_VERSIONS = 3  # runner copies a host keeps, this one included
SSH_EXIT_ERROR = 255  # ssh's own failures; anything else is the remote command's status
STEP_ATTEMPTS = 3
RETRY_PAUSE_SECONDS = 2
COMMAND_TIMEOUT_SECONDS = 300
POLL_SECONDS = 0.1  # how often a running job's cancel flag is looked at
# How long a worker tries to reach a host again whose link broke mid-job (the job runs on
# there); the portal sets it (BUILDER_RECONNECT_SECONDS). 0: lost at once, as before.
RECONNECT_SECONDS = 0
RECONNECT_PAUSE_SECONDS = 2
# Beside the local live log: how much of the host's log it holds (see LogCursor).
OFFSET_FILE = ".builder-live.offset"
TRANSFER_TIMEOUT_SECONDS = 3600  # one SRPM or RPM up or down
# A result file bigger than this is not a package anybody asked for.
MAX_RESULT_FILE_BYTES = 4 << 30
SWEEP_AGE_MINUTES = 10  # a job directory on a host is swept only when at least this old
# A builder's master connection outlives its job by this long, for the builder's next one.
MASTER_IDLE_SECONDS = 300
AGENT_SOURCE = (Path(__file__).parent / "sshagent.py").read_bytes()
AGENT_FILE = f"agent-{hashlib.sha256(AGENT_SOURCE).hexdigest()[:12]}.py"
# Where a debugging user's keys go on a kept machine unless its pool or `new` says otherwise.
DEBUG_KEYS_FILE = "~/.ssh/authorized_keys"
AGENT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class SshHost:
    """One builder host as the pool's config names it."""

    name: str
    address: str
    known_host_key: str  # "ssh-ed25519 AAAA...", the host's public key
    key_path: str  # the private key the service logs in with
    user: str = "root"
    port: int = 22
    # Runner copies go to <work_dir>/runner/<version>, jobs to <work_dir>/jobs/<task id>.
    work_dir: str = "~/.coprsite-builder"
    # Where the runner makes build workspaces on the host (default: the host's temp dir).
    workspaces_dir: str | None = None
    connect_timeout: int = 10
    # Networks builds on this host may not reach besides the worker's (see service_networks).
    blocked_networks: tuple[str, ...] = ()
    # The arches the pool declares for the host; the host must be able to build them.
    arches: tuple[str, ...] = ()
    # A broken link mid-job: how long to try to reach the host again before BuilderLost.
    reconnect_seconds: int = RECONNECT_SECONDS


def check_arches(host: SshHost, *, machine: str, rpm_arch: str) -> None:
    """ArchMismatch when the host cannot build an arch its pool declares for it.

    rpm decides (`rpm --eval %_arch`: an i686 userland on an x86_64 kernel builds i686);
    `uname -m` stands in where rpm is missing.
    """
    real = rpm_arch if rpm_arch not in ("unknown", "") else machine
    native = native_arches(real)
    foreign = [arch for arch in host.arches if arch not in native]
    if foreign:
        raise ArchMismatch(
            f"builder {host.name} is declared for {', '.join(host.arches)} but is {real} "
            f"(rpm --eval %_arch: {rpm_arch}, uname -m: {machine}): it cannot build "
            f"{', '.join(foreign)}"
        )


def job_dir_name(task_id: str) -> str:
    """The directory of a task's job on the host, under <work_dir>/jobs."""
    return safe_file_name(task_id, "job")


def runner_version() -> str:
    """A hash of the runner's sources: hosts run exactly the code of this service."""
    digest = hashlib.sha256()
    for path, name in _runner_sources():
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _runner_sources() -> list[tuple[Path, str]]:
    """(file, name in the runner copy) of builders/ and the pure-Python libraries it needs.

    A builder host needs only Python 3 and the rpm tools: libraries come with the runner.
    """
    packages = [PACKAGE_DIR, *(Path(module.__file__).parent for module in BUNDLED_LIBRARIES)]
    return [
        (path, f"{package.name}/{path.relative_to(package)}")
        for package in packages
        for path in sorted(package.rglob("*.py"))
        if "__pycache__" not in path.parts
    ]


def _runner_tarball(version: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path, name in _runner_sources():
            tar.add(path, arcname=name, recursive=False)
        data = f"{version}\n".encode()
        info = tarfile.TarInfo("VERSION")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def remote_path(path: str) -> str:
    """`path` for the remote shell: quoted, with a leading ~/ meaning the login's home."""
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


class SshFailure(Exception):
    """SSH could not run a command (connection refused, reset, timed out)."""


class SshConnection:
    """The OpenSSH client with one master connection per builder, kept between jobs.

    The login's shell runs one command per master (starting the agent, sshagent.py);
    every other command goes to that agent through a channel of the master, so no shell
    start-up file runs for it.
    """

    def __init__(self, host: SshHost) -> None:
        self.host = host
        self._lock = threading.Lock()
        key = hashlib.sha256(repr(host).encode()).hexdigest()[:16]
        # Short paths: a control socket's path must fit in a sockaddr_un.
        self._known_hosts = _private_dir() / f"{key}.known_hosts"
        # HostKeyAlias keys the file by the builder, whatever address and port it has.
        self._known_hosts.write_text(f"{self._alias} {host.known_host_key.strip()}\n")
        self._control = _private_dir() / f"{key}.control"
        self._agent_name = f"{agent_key(host)}.sock"
        # The agent's socket, forwarded here by the master once the agent runs.
        self._agent_forward = _private_dir() / f"{key}.agent"
        self._agent_ready = False
        # The host was checked (python3, arches, runner) over this master connection.
        self.host_checked = False
        self.home = ""  # the login's home on the host, once the agent runs there

    @property
    def _alias(self) -> str:
        return f"coprsite-builder-{self.host.name}"

    def options(self) -> list[str]:
        host = self.host
        return [
            "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={self._known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", f"HostKeyAlias={self._alias}",
            "-o", "IdentitiesOnly=yes",
            "-o", f"IdentityFile={host.key_path}",
            "-o", f"ConnectTimeout={host.connect_timeout}",
            # A host that vanishes is noticed in about 15 seconds, also mid-build.
            "-o", "ServerAliveInterval=5",
            "-o", "ServerAliveCountMax=3",
            "-o", f"ControlPath={self._control}",
            "-o", "StreamLocalBindUnlink=yes",  # a forward left by a master that ended
            "-o", "LogLevel=ERROR",
            "-F", "/dev/null",
            "-p", str(host.port),
            "-l", host.user,
        ]  # fmt: skip

    def ensure(self) -> None:
        """The master connection and the agent, started when they are not running."""
        with self._lock:
            if self._agent_ready:
                return  # a command that cannot reach it makes `start` look again
            if not self._master_runs():
                self._start_master()
                self.host_checked = False
            self._start_agent()
            self._agent_ready = True

    def forget_agent(self) -> None:
        """After an SSH failure: look at (and restart) the agent before the next command."""
        self._agent_ready = False

    def _start_master(self) -> None:
        """Start the master connection (checks the host key and the login); it ends by
        itself once no command used it for MASTER_IDLE_SECONDS."""
        command = [
            "ssh", *self.options(), "-o", "ControlMaster=yes",
            "-o", f"ControlPersist={MASTER_IDLE_SECONDS}", "-f", "-N", self.host.address,
        ]  # fmt: skip
        completed = subprocess.run(
            command, capture_output=True, timeout=self.host.connect_timeout + 30
        )
        if completed.returncode != 0:
            raise self._failure(completed.stderr)

    def _start_agent(self) -> None:
        """The one command run by the login shell: start the agent unless one answers."""
        directory = '"$HOME"/.coprsite-agent'
        script = (
            "command -v python3 >/dev/null || { echo nopython; exit 0; }; "
            f"(umask 077 && mkdir -p {directory} && cat > {directory}/{AGENT_FILE}) && "
            # Commands get the umask sshd gives sessions: build sandboxes read their files.
            "cd / && umask 022 && "
            f'env -i HOME="$HOME" USER="$USER" LOGNAME="$LOGNAME" PATH={AGENT_PATH} '
            f"python3 {directory}/{AGENT_FILE} {directory}/{self._agent_name} "
            '</dev/null >/dev/null 2>&1 && printf "%s\\n" "$HOME"'
        )
        completed = subprocess.run(
            self._login_shell_command(script),
            input=AGENT_SOURCE,
            capture_output=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
        )
        if completed.returncode == SSH_EXIT_ERROR:
            raise self._failure(completed.stderr)
        home = completed.stdout.decode(errors="replace").strip()
        if home == "nopython":
            raise BuilderRefused(f"builder {self.host.name} has no python3")
        if completed.returncode != 0 or not home.startswith("/"):
            error = completed.stderr.decode(errors="replace").strip()
            raise SshFailure(f"{self.host.name}: the command agent did not start: {error}")
        self.home = home
        self._forward(f"{home}/.coprsite-agent/{self._agent_name}")

    def _forward(self, agent_socket: str) -> None:
        """The agent's socket on the host, as a socket of ours: each connection to it is a
        channel of the master that sshd connects to the agent, starting no shell."""
        forward = [
            "ssh", *self.options(), "-O", "forward",
            "-L", f"{self._agent_forward}:{agent_socket}", self.host.address,
        ]  # fmt: skip
        completed = subprocess.run(forward, capture_output=True, timeout=30)
        if completed.returncode != 0:
            raise self._failure(completed.stderr)
        reached = AgentCommand(str(self._agent_forward), "true")
        if reached.wait(COMMAND_TIMEOUT_SECONDS) != 0:
            raise BuilderRefused(
                f"builder {self.host.name}: its sshd does not let commands reach the "
                f"builder's command agent (set AllowStreamLocalForwarding yes, the default, "
                f"and no DisableForwarding, for the login {self.host.user}): "
                f"{reached.collected_stderr.decode(errors='replace')}"
            )

    def _master_runs(self) -> bool:
        check = ["ssh", *self.options(), "-O", "check", self.host.address]
        return subprocess.run(check, capture_output=True, timeout=30).returncode == 0

    def close(self) -> None:
        """Stop the master connection (the host's agent ends when idle)."""
        exit_master = ["ssh", *self.options(), "-O", "exit", self.host.address]
        with suppress(subprocess.TimeoutExpired):
            subprocess.run(exit_master, capture_output=True, timeout=30)
        self._agent_ready = False
        self.host_checked = False

    def _login_shell_command(self, remote_command: str) -> list[str]:
        return ["ssh", *self.options(), "-o", "ControlMaster=no", self.host.address, remote_command]

    def start(self, remote_command: str, *, stdout_pipe: bool = False) -> AgentCommand:
        """Start `remote_command` (a shell line) through the agent, as `ssh host
        remote_command` would: same pipes, same exit status, 255 for a broken connection."""
        self.ensure()
        command = AgentCommand(str(self._agent_forward), remote_command, stdout_pipe=stdout_pipe)
        if command.returncode == SSH_EXIT_ERROR:
            # Not connected: the master ended since (idle for MASTER_IDLE_SECONDS) or the
            # agent did. Both again, once; a failure now is the connection's.
            self.forget_agent()
            self.ensure()
            command = AgentCommand(
                str(self._agent_forward), remote_command, stdout_pipe=stdout_pipe
            )
        return command

    def run(
        self, remote_command: str, *, stdin: bytes = b"", timeout: float = COMMAND_TIMEOUT_SECONDS
    ) -> subprocess.CompletedProcess[bytes]:
        """Run a command; SshFailure / BuilderRefused when ssh, not the command, failed."""
        process = self.start(remote_command)
        # A command that ended early (or a lost connection) leaves a broken pipe: the
        # status says which.
        with suppress(BrokenPipeError):
            process.stdin.write(stdin)
        process.stdin.close()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            process.kill()
            raise SshFailure(f"{self.host.name}: no answer within {timeout} s") from exc
        stdout, stderr = bytes(process.collected_stdout), bytes(process.collected_stderr)
        if process.returncode == SSH_EXIT_ERROR:
            raise self._failure(stderr)
        return subprocess.CompletedProcess(remote_command, process.returncode, stdout, stderr)

    def check_output(self, remote_command: str, *, stdin: bytes = b"") -> bytes:
        completed = self.run(remote_command, stdin=stdin)
        if completed.returncode != 0:
            error = completed.stderr.decode(errors="replace").strip()
            raise SshFailure(f"{self.host.name}: `{remote_command}` failed: {error}")
        return completed.stdout

    def send_tar(self, remote_command: str, *, files: dict[str, Path], data: dict[str, bytes]):
        """Stream a tar of local `files` and in-memory `data` (name -> content) to a command
        that unpacks it; files are read as they go, never held in memory."""
        with self._piped(remote_command, stdout_pipe=False) as process:
            try:
                with tarfile.open(fileobj=process.stdin, mode="w|") as tar:
                    for name, path in files.items():
                        tar.add(path, arcname=name, recursive=False)
                    for name, content in data.items():
                        info = tarfile.TarInfo(name)
                        info.size = len(content)
                        tar.addfile(info, io.BytesIO(content))
            except BrokenPipeError:
                pass  # the command ended early; its status says why
            finally:
                process.stdin.close()

    def receive_tar(
        self, remote_command: str, target: Path, *, accept: Callable[[tarfile.TarInfo], bool]
    ) -> None:
        """Unpack the tar a command prints into `target`, member by member as `accept` says,
        as it arrives."""
        with self._piped(remote_command, stdout_pipe=True) as process:
            try:
                with tarfile.open(fileobj=process.stdout, mode="r|") as tar:
                    for member in tar:
                        if accept(member):
                            _write_member(tar, member, target / member.name)
            except tarfile.TarError as exc:
                process.kill()
                raise SshFailure(f"{self.host.name}: the results came back broken: {exc}") from exc
            except BaseException:
                process.kill()
                raise

    @contextmanager
    def _piped(self, remote_command: str, *, stdout_pipe: bool) -> Iterator[AgentCommand]:
        """A command with one end piped to us; its failure raised once it ended."""
        process = self.start(remote_command, stdout_pipe=stdout_pipe)
        if stdout_pipe:
            process.stdin.close()  # nothing to send
        try:
            yield process
        finally:
            try:
                process.wait(TRANSFER_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        stderr = bytes(process.collected_stderr)
        if process.returncode == SSH_EXIT_ERROR:
            raise self._failure(stderr)
        if process.returncode != 0:
            error = stderr.decode(errors="replace").strip()
            raise SshFailure(f"{self.host.name}: `{remote_command}` failed: {error}")

    def _failure(self, stderr: bytes) -> Exception:
        text = stderr.decode(errors="replace").strip()
        name = self.host.name
        if "Host key verification failed" in text or "HOST IDENTIFICATION HAS CHANGED" in text:
            return BuilderRefused(
                f"builder {name}: its SSH host key is not the one the pool knows "
                f"(not accepted; fix the pool's known host key if the host was reinstalled)"
            )
        if "Permission denied" in text:
            return BuilderRefused(f"builder {name} refused the pool's SSH key ({text[-200:]})")
        return SshFailure(f"builder {name}: ssh failed: {text[-300:] or 'no message'}")


_private: list[Path] = []
_connections: dict[SshHost, SshConnection] = {}
_connections_lock = threading.Lock()


def _private_dir() -> Path:
    """This process's directory for control sockets and known hosts (mode 0700)."""
    if not _private:
        _private.append(Path(tempfile.mkdtemp(prefix="coprsite-ssh-")))
        atexit.register(shutil.rmtree, _private[0], ignore_errors=True)
    return _private[0]


def agent_key(host: SshHost) -> str:
    """One agent per builder and agent version: test hosts may share one home."""
    identity = f"{host.name}\0{host.address}\0{host.port}\0{host.user}\0{host.work_dir}"
    return hashlib.sha256(f"{identity}\0{AGENT_FILE}".encode()).hexdigest()[:16]


def builder_connection(host: SshHost) -> SshConnection:
    """The connection of this process to a builder, shared by its jobs and probes."""
    with _connections_lock:
        if not _connections:
            atexit.register(close_all_connections)
        if host not in _connections:
            _connections[host] = SshConnection(host)
        return _connections[host]


def close_connection(host: SshHost) -> None:
    """Stop the master of a builder that is gone (a disposable machine deleted)."""
    with _connections_lock:
        connection = _connections.pop(host, None)
    if connection is not None:
        connection.close()


def close_all_connections() -> None:
    for host in list(_connections):
        close_connection(host)


def with_retries(connection: SshConnection, step: Callable[[], Any]) -> Any:
    """Run one transport step again when SSH failed; BuilderLost after the last attempt."""
    for attempt in range(1, STEP_ATTEMPTS + 1):
        try:
            connection.ensure()
            return step()
        except SshFailure as failure:
            connection.forget_agent()
            if attempt == STEP_ATTEMPTS:
                raise BuilderLost(str(failure)) from failure
            time.sleep(RETRY_PAUSE_SECONDS * attempt)
    raise AssertionError("unreachable")


class SshTransport:
    """Runs jobs on one SSH builder host; the runner copy is installed on first use."""

    detached_jobs = True  # run() takes attach and on_job: a job outlives its worker

    def __init__(self, host: SshHost) -> None:
        self.host = host
        self.version = runner_version()
        self.runner_dir = f"{host.work_dir}/runner/{self.version}"

    def run(
        self,
        spec: JobSpec,
        *,
        should_cancel: Callable[[], bool],
        attach: bool = False,
        on_job: Callable[[str], None] | None = None,
    ) -> JobResult:
        """Run the job of `spec` on the host, or with `attach` follow and collect the one a
        worker before started there (never starting it twice). `on_job` gets the job's id
        once its directory is on the host, before it starts: what a worker reattaches by."""
        result_dir = Path(spec.result_dir)
        result_dir.mkdir(parents=True, exist_ok=True)
        job_id = job_dir_name(spec.task_id)
        job_dir = f"{self.host.work_dir}/jobs/{job_id}"
        connection = builder_connection(self.host)
        if not attach:
            clear_previous_attempt(result_dir, keep=_local_inputs(spec))
        with LiveLog(result_dir / LOG_NAME) as log:
            cursor = LogCursor(result_dir / OFFSET_FILE, log, fresh=not attach)
            if attach:
                cursor.note(f"Reattached to job {job_id} on {self.host.name}")
            else:
                cursor.note(f"Builder host {self.host.name} ({self.host.address}), over SSH")
                if not connection.host_checked:
                    with_retries(connection, lambda: self.check_host(connection))
                with_retries(connection, lambda: self.upload_job(connection, spec, job_dir))
                if on_job is not None:
                    on_job(job_id)
            with_retries(connection, lambda: self.start_job(connection, job_dir))
            self.follow(connection, job_dir, cursor, should_cancel)
            staging = Path(tempfile.mkdtemp(prefix="coprsite-staging-", dir=result_dir.parent))
            try:
                with_retries(connection, lambda: self.download(connection, job_dir, staging))
                result = accept_results(spec, staging, result_dir)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
                self.remove_job(connection, job_dir)
            cursor.remove()
            ending = f": {result.failure_reason}" if result.failure_reason else ""
            log.info(f"Host {self.host.name} finished: {result.state}{ending}")
        return result

    def probe(self, *, keep_jobs: Iterable[str] | None = None) -> str:
        """Connect and check the host (installing the runner); returns the runner version.

        With `keep_jobs` (the job directories of the tasks the portal runs there), every
        other job is swept: left by a worker that died, its processes are killed and its
        directory removed.
        """
        connection = builder_connection(self.host)
        with_retries(connection, lambda: self.check_host(connection))
        if keep_jobs is not None:
            with_retries(connection, lambda: self.sweep_jobs(connection, keep_jobs))
        return self.version

    def sweep_jobs(self, connection: SshConnection, keep: Iterable[str]) -> list[str]:
        """Kill and remove the jobs on the host that are not in `keep`, with the workspaces
        they left (builders/sweep.py, in the runner copy); their names."""
        kept = " ".join(shlex.quote(job_dir_name(name)) for name in keep)
        script = (
            f"cd {remote_path(self.runner_dir)} && exec python3 -m builders.sweep "
            f"{remote_path(self.host.work_dir)}/jobs {SWEEP_AGE_MINUTES} {kept}"
        )
        return connection.check_output(script).decode(errors="replace").split()

    # -- check the host, install the runner ------------------------------------------------

    def check_host(self, connection: SshConnection) -> None:
        """Python 3, the declared arches and the runner copy of this version, installing
        it if needed."""
        script = (
            "command -v python3 >/dev/null || { echo nopython; exit 0; }; "
            "python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'; "
            "uname -m; rpm --eval %_arch 2>/dev/null || echo unknown; "
            f"cat {remote_path(self.runner_dir)}/VERSION 2>/dev/null || true"
        )
        lines = connection.check_output(script).decode(errors="replace").split()
        if not lines or lines[0] == "nopython":
            raise BuilderRefused(f"builder {self.host.name} has no python3")
        python = tuple(int(part) for part in lines[0].split("."))
        if python < MIN_PYTHON:
            raise BuilderRefused(
                f"builder {self.host.name} has Python {lines[0]}; the runner needs "
                f"{'.'.join(map(str, MIN_PYTHON))} or newer"
            )
        machine, rpm_arch = (lines[1:3] + ["unknown", "unknown"])[:2]
        check_arches(self.host, machine=machine, rpm_arch=rpm_arch)
        if lines[3:4] != [self.version]:
            self.install_runner(connection)
        connection.host_checked = True

    def install_runner(self, connection: SshConnection) -> None:
        """Unpack this runner version beside older ones; a rename makes it appear whole."""
        final = remote_path(self.runner_dir)
        script = (
            f"set -e; mkdir -p {final}.new.$$; tar -xzf - -C {final}.new.$$; "
            # Another task may have installed it meanwhile: then keep that copy.
            f"mv -T {final}.new.$$ {final} 2>/dev/null || rm -rf {final}.new.$$; "
            # Older versions go, but the newest few stay for jobs of workers not yet updated
            # (installs in progress, *.new.*, are never touched).
            f"cd {final}/.. && ls -t | grep -v '[.]new[.]' | tail -n +{KEEP_RUNNER_VERSIONS + 1}"
            " | xargs -r rm -rf --; "
            f"cat {final}/VERSION"
        )
        installed = connection.check_output(script, stdin=_runner_tarball(self.version))
        if installed.decode().strip() != self.version:
            raise BuilderRefused(f"builder {self.host.name}: the runner copy did not install")

    # -- upload, run, download -------------------------------------------------------------

    def upload_job(self, connection: SshConnection, spec: JobSpec, job_dir: str) -> None:
        """A fresh job directory with the job's input file and its spec in host paths.

        One tar stream carries both: every round trip costs a remote login shell.
        """
        host_job_dir = self.absolute(connection, job_dir)
        source, inputs = dict(spec.source), {}
        for key in ("path", "srpm_path", "hook_payload_path"):
            if isinstance(source.get(key), str):
                local = Path(source[key])
                name = safe_file_name(local.name, "source.src.rpm")
                inputs[f"input/{name}"] = local
                source[key] = f"{host_job_dir}/input/{name}"
        remote_spec = replace(
            spec,
            result_dir=f"{host_job_dir}/{RESULTS_SUBDIR}",
            workspaces_root=self.host.workspaces_dir,
            source=source,
            keep_workspace=self.debug_dir(connection, spec.task_id) if spec.keep_workspace else "",
        )
        directory = remote_path(job_dir)
        # A job an earlier attempt left running there stops first: never two at once.
        stop_earlier = self._remote("cancel", job_dir).replace("exec ", "")
        connection.send_tar(
            f"{{ [ ! -e {directory}/{STARTED_FILE} ] || ({stop_earlier}); }} && "
            f"rm -rf {directory} && mkdir -p {directory}/{RESULTS_SUBDIR} && "
            f"tar -xf - -C {directory}",
            files=inputs,
            data={JOB_FILE: remote_spec.to_json().encode()},
        )

    def debug_dir(self, connection: SshConnection, task_id: str) -> str:
        """Where a job that asked for SSH access leaves its workspace (builders/debug_shell)."""
        return self.absolute(connection, f"{self.host.work_dir}/debug/{job_dir_name(task_id)}")

    def grant_debug_access(
        self, task_id: str, public_keys: Iterable[str], *, keys_file: str = DEBUG_KEYS_FILE
    ) -> None:
        """Let the user's keys log in to this host, each only into the sandbox of the job's
        kept workspace (a forced command, no forwarding of any kind)."""
        connection = builder_connection(self.host)

        def install() -> None:
            runner = self.absolute(connection, self.runner_dir)
            directory = self.debug_dir(connection, task_id)
            command = (
                f"cd {shlex.quote(runner)} && exec python3 -m builders.debug_shell "
                f"{shlex.quote(directory)}"
            )
            options = 'restrict,pty,command="' + command.replace('"', '\\"') + '"'
            lines = "".join(f"{options} {key}\n" for key in public_keys)
            connection.check_output(
                f'umask 077 && mkdir -p "$(dirname {remote_path(keys_file)})" && '
                f"cat >> {remote_path(keys_file)}",
                stdin=lines.encode(),
            )

        with_retries(connection, install)

    def absolute(self, connection: SshConnection, path: str) -> str:
        """`path` with a leading ~/ made absolute with the login's home."""
        if not path.startswith("~/"):
            return path
        return f"{connection.home}/{path[2:]}"

    def _remote(self, command: str, job_dir: str, *operands: str) -> str:
        blocked = shlex.quote(" ".join(self.service_networks()))
        return (
            f"cd {remote_path(self.runner_dir)} && "
            f'{EXTRA_BLOCKED_ENV}="${{{EXTRA_BLOCKED_ENV}:-}} "{blocked} '
            f"exec python3 -m builders.remote {command} {remote_path(job_dir)} {' '.join(operands)}"
        )

    def start_job(self, connection: SshConnection, job_dir: str) -> None:
        """Start the job detached, unless it was (a retry, a worker reattaching)."""
        completed = connection.run(self._remote("start", job_dir))
        if completed.returncode == JOB_MISSING:
            # The host answers: the builder is fine, the job is to run again.
            raise BuilderLost(
                f"builder {self.host.name}: the job directory {job_dir} is gone",
                pool_healthy=True,
            )
        if completed.returncode != 0:
            error = completed.stderr.decode(errors="replace").strip()
            raise SshFailure(f"{self.host.name}: the job did not start: {error[-300:]}")

    def follow(
        self,
        connection: SshConnection,
        job_dir: str,
        cursor: LogCursor,
        should_cancel: Callable[[], bool],
    ) -> None:
        """Tail the job's live log into the local one until the job has ended.

        A broken link ends only the tail: the job runs on, and the tail starts again from
        the cursor once the host answers, for up to the host's reconnect_seconds.
        """
        lost_since: float | None = None
        while True:
            try:
                connection.ensure()
                status, stderr = self._tail(connection, job_dir, cursor, should_cancel)
            except SshFailure as failure:
                status, stderr = SSH_EXIT_ERROR, str(failure)
            if status == 0:
                return
            if status == JOB_GONE:
                raise BuilderLost(
                    f"builder {self.host.name}: the job ended without a result", pool_healthy=True
                )
            if status != SSH_EXIT_ERROR:
                raise SshFailure(f"{self.host.name}: following the job failed: {stderr[-300:]}")
            connection.forget_agent()
            now = time.monotonic()
            if lost_since is None or cursor.moved:
                lost_since = now
                cursor.moved = False
                cursor.note(f"Connection to {self.host.name} lost; the job runs on there")
            if now - lost_since >= self.host.reconnect_seconds:
                raise BuilderLost(
                    f"builder {self.host.name}: the connection broke during the build and "
                    f"did not come back in {self.host.reconnect_seconds} s"
                    f" ({stderr[-200:] or 'no message'})"
                )
            should_cancel()  # its JobLeft ends the wait: another worker follows the job
            time.sleep(RECONNECT_PAUSE_SECONDS)

    def _tail(
        self,
        connection: SshConnection,
        job_dir: str,
        cursor: LogCursor,
        should_cancel: Callable[[], bool],
    ) -> tuple[int, str]:
        """One tail of the job's log from the cursor; its status and standard error."""
        process = connection.start(
            self._remote("tail", job_dir, str(cursor.remote)), stdout_pipe=True
        )
        copier = threading.Thread(target=_copy_stream, args=(process.stdout, cursor), daemon=True)
        copier.start()
        canceled = False
        try:
            while process.poll() is None:
                if not canceled and should_cancel():
                    canceled = True
                    cursor.note(f"Stopping the job on {self.host.name}")
                    _send_cancel(process)
                with suppress(subprocess.TimeoutExpired):
                    process.wait(POLL_SECONDS)
        except BaseException:
            process.kill()  # ends the tail only (JobLeft: another worker follows the job)
            raise
        copier.join()
        assert process.stdout is not None
        process.stdout.close()
        return process.returncode, process.collected_stderr.decode(errors="replace").strip()

    def service_networks(self) -> list[str]:
        """What builds on the host must not reach: the worker's own addresses, the networks
        its operator blocks (the database's, the broker's) and the pool's for this host."""
        return [*host_addresses(), *operator_blocked_networks(), *self.host.blocked_networks]

    def download(self, connection: SshConnection, job_dir: str, staging: Path) -> None:
        """Copy the runner's result, its errors and the result files into `staging`, in one
        tar stream, refusing anything but plain files with safe names of a sane size."""
        (staging / RESULTS_SUBDIR).mkdir(exist_ok=True)
        command = (
            f"cd {remote_path(job_dir)} && touch {RUNNER_ERRORS} && "
            f"tar -cf - --exclude={RESULTS_SUBDIR}/{LOG_NAME} {RESULT_FILE} {RUNNER_ERRORS} "
            f"{RESULTS_SUBDIR}"
        )
        connection.receive_tar(command, staging, accept=self.acceptable_download)

    def acceptable_download(self, member: tarfile.TarInfo) -> bool:
        """What a job directory may send back; BuilderRefused for what no runner writes."""
        if member.isdir() and member.name == RESULTS_SUBDIR:
            return False  # made already
        top, _, name = member.name.partition("/")
        allowed = member.name in (RESULT_FILE, RUNNER_ERRORS) or (
            top == RESULTS_SUBDIR and name and safe_file_name(name, "") == name
        )
        if not member.isreg() or not allowed or member.size > MAX_RESULT_FILE_BYTES:
            raise BuilderRefused(
                f"builder {self.host.name} returned an unusable file {member.name!r}"
            )
        return True

    def remove_job(self, connection: SshConnection, job_dir: str) -> None:
        # A leftover job directory is harmless; the next attempt replaces it.
        with suppress(SshFailure, BuilderRefused):
            connection.run(f"rm -rf {remote_path(job_dir)}", timeout=60)


def _write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path) -> None:
    source = tar.extractfile(member)
    assert source is not None  # a regular file
    with open(path, "wb") as target:
        shutil.copyfileobj(source, target)
    if path.stat().st_size != member.size:
        raise SshFailure(f"{path.name} came back incomplete")


def _local_inputs(spec: JobSpec) -> list[Path]:
    paths = [spec.source.get("path"), spec.source.get("srpm_path")]
    return [Path(path) for path in paths if isinstance(path, str)]


def _copy_stream(stream: io.BufferedReader | Any, cursor: LogCursor) -> None:
    for chunk in iter(lambda: stream.read1(65536), b""):
        cursor.write(chunk)


class LogCursor:
    """How much of the host's live log the local one holds, kept in a file beside it.

    The file records (host offset, local size) after each write of the host's bytes; a
    worker that died between a write and its record left more local bytes than recorded,
    all of them the host's: the next one resumes at exactly the right offset.
    """

    def __init__(self, path: Path, log: LiveLog, *, fresh: bool) -> None:
        self.path = path
        self.log = log
        self.remote = 0
        self.moved = False  # bytes came since the last look (the link works)
        if not fresh:
            self.remote = self._recorded()

    def _recorded(self) -> int:
        try:
            remote, local = (int(part) for part in self.path.read_text().split())
        except (OSError, ValueError):
            return 0
        return remote + max(0, self._local_size() - local)

    def _local_size(self) -> int:
        return self.log.path.stat().st_size

    def write(self, chunk: bytes) -> None:
        self.log.write(chunk)
        self.remote += len(chunk)
        self.moved = True
        self.save()

    def note(self, message: str) -> None:
        """A line of the transport's own in the local log."""
        self.log.info(message)
        self.save()

    def save(self) -> None:
        self.path.write_text(f"{self.remote} {self._local_size()}\n")

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _send_cancel(process: AgentCommand) -> None:
    try:
        process.stdin.write(CANCEL_COMMAND)
        process.stdin.flush()
    except OSError:
        process.kill()


# -- checking what came back --------------------------------------------------------------


class ResultRejected(Exception):
    """What the builder returned is not what the job could have produced."""


def accept_results(spec: JobSpec, staging: Path, result_dir: Path) -> JobResult:
    """Check the downloaded result and, when it succeeded, publish its files."""
    try:
        job_result = JobResult.from_json((staging / RESULT_FILE).read_text())
    except (OSError, ValueError, TypeError) as exc:
        errors = (staging / RUNNER_ERRORS).read_text(errors="replace").strip()
        last_line = errors.splitlines()[-1] if errors else str(exc)
        raise BuilderRefused(f"the builder's runner wrote no usable result: {last_line}") from exc
    files = staging / RESULTS_SUBDIR
    # The build's own logs, spec and configs come back whatever its outcome, as with the
    # local runner; they are never published into a repository.
    keep_side_files(files, result_dir)
    if job_result.state != STATE_SUCCEEDED:
        return job_result
    try:
        results_json = json.loads((files / RESULTS_JSON).read_text())
        check_files(spec, job_result, files)
    except (OSError, ValueError, ResultRejected) as exc:
        reason = f"the builder's results were refused: {exc}"
        return JobResult(state="failed", failure_reason=reason)
    names = publish([files / name for name in job_result.files], result_dir)
    write_json(result_dir / RESULTS_JSON, results_json)
    mark_success(result_dir)
    return replace(job_result, files=names)


def is_side_file(name: str) -> bool:
    """build.log, root.log, configs.tar.gz, the spec or one of mock's logs: no package."""
    return name in (BUILD_LOG, ROOT_LOG, CONFIGS_ARCHIVE) or name.endswith((".log", ".spec"))


def keep_side_files(files: Path, result_dir: Path) -> None:
    """Move the side files of the download into the result dir (names were checked)."""
    if not files.is_dir():
        return
    for path in files.iterdir():
        if path.is_file() and is_side_file(path.name):
            shutil.move(path, result_dir / path.name)


def check_files(spec: JobSpec, result: JobResult, files: Path) -> None:
    """The listed files are exactly the RPMs there, with headers matching their names."""
    present = {p.name for p in files.iterdir()} - {RESULTS_JSON, SUCCESS_FILE}
    if present != set(result.files):
        raise ResultRejected(f"files {sorted(present)} do not match {sorted(result.files)}")
    if spec.kind == KIND_SRPM:
        _check_srpm(result, files)
        return
    expected = {_rpm_file_name(package) for package in result.packages}
    if expected != present:
        raise ResultRejected(f"packages {sorted(expected)} do not match files {sorted(present)}")
    for name in present:
        try:
            header = read_rpm_nevra(files / name)
        except BadRpm as exc:
            raise ResultRejected(f"{name} is not an RPM: {exc}") from exc
        if _rpm_file_name(header) != name:
            raise ResultRejected(f"{name} holds {_rpm_file_name(header)}")
        if header["arch"] not in (spec.arch, "noarch", "src"):
            raise ResultRejected(f"{name} is built for {header['arch']}, not {spec.arch}")


def _check_srpm(result: JobResult, files: Path) -> None:
    if len(result.files) != 1 or not result.srpm:
        raise ResultRejected("a source task returns exactly one source RPM")
    name = result.files[0]
    try:
        header = read_srpm_header(files / name)
    except NotAnSrpm as exc:
        raise ResultRejected(f"{name} is not a source RPM: {exc}") from exc
    if f"{header['name']}-{header['version']}-{header['release']}.src.rpm" != name:
        raise ResultRejected(f"{name} does not hold the package its name says")
    if header["name"] != result.srpm.get("name"):
        raise ResultRejected(f"{name} is not the package the runner reported")


def _rpm_file_name(package: dict[str, Any]) -> str:
    return f"{package['name']}-{package['version']}-{package['release']}.{package['arch']}.rpm"
