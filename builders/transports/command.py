"""The command transport: a fresh host per job from an operator's `new` command (resalloc-style).

    new     -> prints the address of a fresh machine (and how to log in)
    run     -> the job runs there exactly as on a static SSH host (builders/transports/ssh.py),
               detached: when its worker dies, another reattaches to it on the same machine
    delete  -> whatever happened, once the job is collected; the portal's reconcile calls it
               again for a machine whose job nobody follows (see apps/fleet/machines.py)

Both commands get COPRSITE_MACHINE_NAME, a name unique to the job's attempt; `delete` also
gets COPRSITE_MACHINE_ADDRESS when the machine had one. `new` prints `key=value` lines:
`address` (or a bare address on a line of its own), and optionally `port`, `user`,
`host_key` (the machine's SSH host public key) and `key_path` (the private key to log in
with). What it does not print comes from the pool's config. `delete` must succeed for a
name it does not know: it may be called twice, or for a machine `new` never finished.

The disposable VMs of a `vm` pool are such a pair of commands: `python3 -m builders.vm`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from builders.protocol import STATE_CANCELED, STATE_FAILED, STATE_SUCCEEDED, JobResult, JobSpec
from builders.transports import ArchMismatch, BuilderLost, BuilderRefused, JobLeft
from builders.transports.ssh import (
    DEBUG_KEYS_FILE,
    SshHost,
    SshTransport,
    close_connection,
    runner_version,
)

NAME_ENV = "COPRSITE_MACHINE_NAME"
ADDRESS_ENV = "COPRSITE_MACHINE_ADDRESS"
MACHINE_KEYS = {"address", "port", "user", "host_key", "key_path", "debug_keys_file"}
POLL_SECONDS = 0.2
STDERR_TAIL = 300  # characters of a failed command's output that go into the reason
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MachineCommands:
    """A pool's `new` and `delete`: a shell line, or an argument list run as it is."""

    new: str | list[str]
    delete: str | list[str]
    new_timeout: int = 600
    delete_timeout: int = 300
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Machine:
    name: str
    address: str
    port: int | None = None
    user: str | None = None
    host_key: str | None = None
    key_path: str | None = None
    # Where a debugging user's keys go (SSH access for debugging; builders/debug_shell.py).
    debug_keys_file: str | None = None


class MachineEvents(Protocol):
    """Where the portal records a machine, so that reconcile can delete it if we die, and
    where ready machines come from (resalloc's lifecycle, apps/fleet/machines.py)."""

    def take(self) -> Machine | None:
        """A ready machine for this job, claimed for it; None to make one."""
        ...

    def attached(self) -> Machine | None:
        """The machine this task attempt's job already runs on (a worker reattaching)."""
        ...

    def creating(self, name: str) -> None: ...
    def created(self, machine: Machine) -> None: ...
    def acquired(self, machine: Machine, waited: float) -> None: ...

    def keep(self, machine: Machine) -> bool:
        """After a successful job: True when the machine stays for a next job."""
        ...

    def kept_for_debugging(self, machine: Machine) -> bool:
        """After a job that asked for SSH access and ran: True when the machine stays for
        the user until it expires or they give it up (then the portal deletes it)."""
        ...

    def deleted(self, name: str) -> None: ...
    def delete_failed(self, name: str, reason: str) -> None: ...


class CommandFailed(Exception):
    pass


def machine_new(
    commands: MachineCommands, name: str, *, should_cancel: Callable[[], bool] = lambda: False
) -> Machine | None:
    """Run `new`; the machine it made, or None when the job was canceled meanwhile."""
    output = _run(
        commands.new,
        env=_command_env(commands, name),
        timeout=commands.new_timeout,
        should_cancel=should_cancel,
        what="new",
    )
    if output is None:
        return None
    return parse_machine(name, output)


def machine_delete(commands: MachineCommands, name: str, address: str = "") -> None:
    """Run `delete`; CommandFailed when it did not succeed (the caller tries again later)."""
    env = _command_env(commands, name, {ADDRESS_ENV: address} if address else {})
    _run(commands.delete, env=env, timeout=commands.delete_timeout, what="delete")


def parse_machine(name: str, output: str) -> Machine:
    """The machine `new` described; CommandFailed when it printed no address."""
    values: dict[str, str] = {}
    for line in output.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key in MACHINE_KEYS:
            values[key] = value.strip()
        elif not sep and line.strip() and "address" not in values:
            values["address"] = line.strip()
    if not values.get("address"):
        raise CommandFailed(f"`new` printed no address (output: {output.strip()[-STDERR_TAIL:]!r})")
    port = values.get("port")
    if port is not None and not port.isdigit():
        raise CommandFailed(f"`new` printed port={port!r}, not a number")
    return Machine(
        name=name,
        address=values["address"],
        port=int(port) if port else None,
        user=values.get("user"),
        host_key=values.get("host_key"),
        key_path=values.get("key_path"),
        debug_keys_file=values.get("debug_keys_file"),
    )


def _command_env(commands: MachineCommands, name: str, extra: dict | None = None) -> dict:
    return {**os.environ, **commands.env, NAME_ENV: name, **(extra or {})}


def _run(
    command: str | list[str],
    *,
    env: dict,
    timeout: int,
    what: str,
    should_cancel: Callable[[], bool] = lambda: False,
) -> str | None:
    """Run an operator command in a session of its own; its stdout, None when canceled.

    A timeout or a cancel kills the command's whole process group, not only its shell.
    """
    argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while process.poll() is None:
            if should_cancel() or time.monotonic() > deadline:
                _kill_group(process)
                if should_cancel():
                    return None
                raise CommandFailed(f"`{what}` did not finish within {timeout} s; killed")
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(POLL_SECONDS)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if process.returncode != 0:
        message = (stderr.strip() or stdout.strip())[-STDERR_TAIL:] or "no message"
        raise CommandFailed(f"`{what}` exited with status {process.returncode}: {message}")
    return stdout


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


class CommandTransport:
    """Runs a job on a machine of its own: a ready one the portal hands over, or one made by
    `new`. Removed by `delete` afterwards unless the portal keeps it for a next job, which
    it may only after a successful one."""

    detached_jobs = True  # run() takes attach and on_job: a job outlives its worker

    def __init__(
        self,
        *,
        pool: str,
        commands: MachineCommands,
        ssh_defaults: SshHost,
        name: str,
        events: MachineEvents,
        debug_keys: tuple[str, ...] = (),
        debug_keys_file: str = DEBUG_KEYS_FILE,
    ) -> None:
        self.pool = pool
        self.commands = commands
        self.ssh_defaults = ssh_defaults
        self.name = name
        self.events = events
        self.version = runner_version()
        # Set by a successful job: its machine may serve the next (events.keep decides).
        self.reusable = False
        # SSH access for debugging: these public keys reach the machine after the job, which
        # then stays for their user and never runs another job.
        self.debug_keys = debug_keys
        self.debug_keys_file = debug_keys_file
        self.debug_granted = False

    def run(
        self,
        spec: JobSpec,
        *,
        should_cancel: Callable[[], bool],
        attach: bool = False,
        on_job: Callable[[str], None] | None = None,
    ) -> JobResult:
        """Run the job on a machine of its own, or with `attach` follow and collect the one
        a worker before started on its machine (SshTransport.run)."""
        with self.machine(should_cancel, attach=attach) as machine:
            if machine is None:
                return JobResult(state=STATE_CANCELED, failure_reason="canceled by the user")
            transport = SshTransport(self.ssh_host(machine))
            try:
                result = transport.run(
                    spec, should_cancel=should_cancel, attach=attach, on_job=on_job
                )
            except ArchMismatch:
                raise  # every machine of the pool is of that arch: the pool goes down
            except BuilderLost as lost:
                # This machine is gone, not the pool: the next job gets a new one.
                raise BuilderLost(lost.reason, pool_healthy=True) from lost
            if self.debug_keys and result.state in (STATE_SUCCEEDED, STATE_FAILED):
                self.debug_granted = self.grant_debug_access(machine, spec)
                return result
            # A failed or canceled build may have left anything behind: no reuse.
            self.reusable = result.state == STATE_SUCCEEDED
            return result

    def grant_debug_access(self, machine: Machine, spec: JobSpec) -> bool:
        """Install the user's keys on the machine the job ran on; False when that failed
        (the machine is deleted then, the build's outcome stands)."""
        keys_file = machine.debug_keys_file or self.debug_keys_file
        try:
            SshTransport(self.ssh_host(machine)).grant_debug_access(
                spec.task_id, self.debug_keys, keys_file=keys_file
            )
        except (BuilderLost, BuilderRefused) as error:
            logger.error("machine %s: SSH access not granted: %s", machine.name, error)
            return False
        return True

    def probe(self) -> str:
        """Make a machine, check it answers (installing the runner), delete it."""
        with self.machine(lambda: False) as machine:
            assert machine is not None
            return SshTransport(self.ssh_host(machine)).probe()

    @contextlib.contextmanager
    def machine(self, should_cancel: Callable[[], bool], *, attach: bool = False):
        """A machine for the block (None when canceled first): with `attach` the one the
        job runs on, else a ready one, else a fresh one; deleted afterwards unless kept for
        a next job, or left to the worker that took the job over."""
        if attach:
            machine = self.events.attached()
            if machine is None:
                raise BuilderLost("the machine this job ran on is gone", pool_healthy=True)
        else:
            started = time.monotonic()
            machine = self.events.take()
            if machine is None:
                self.events.creating(self.name)
        try:
            if machine is None:
                machine = self.new_machine(should_cancel)
            if machine is not None and not attach:
                self.events.acquired(machine, time.monotonic() - started)
            yield machine
        except JobLeft:
            if machine is not None:
                self.forget_connection(machine)
            raise  # the job and its machine are another worker's now
        except BaseException:
            self.release(machine)
            raise
        self.release(machine)

    def release(self, machine: Machine | None) -> None:
        """After the job: the machine stays for its user (SSH access) or for the owner's next
        build, else it is deleted."""
        if machine is not None:
            self.forget_connection(machine)
        if machine is not None and self.debug_granted:
            kept = self.events.kept_for_debugging(machine)
        else:
            kept = machine is not None and self.reusable and self.events.keep(machine)
        if not kept:
            self.delete(machine.name if machine else self.name, machine.address if machine else "")

    def new_machine(self, should_cancel: Callable[[], bool]) -> Machine | None:
        try:
            machine = machine_new(self.commands, self.name, should_cancel=should_cancel)
        except CommandFailed as failed:
            reason = f"pool {self.pool} could not make a machine: {failed}"
            raise BuilderLost(reason, before_job=True) from failed
        if machine is not None:
            self.events.created(machine)
        return machine

    def forget_connection(self, machine: Machine) -> None:
        """This machine's master connection ends with it: no later job goes there."""
        with contextlib.suppress(BuilderRefused):
            close_connection(self.ssh_host(machine))

    def delete(self, name: str, address: str) -> None:
        try:
            machine_delete(self.commands, name, address)
        except CommandFailed as failed:
            # The row stays: reconcile runs `delete` again until it succeeds.
            self.events.delete_failed(name, str(failed))
        else:
            self.events.deleted(name)

    def ssh_host(self, machine: Machine) -> SshHost:
        host_key = machine.host_key or self.ssh_defaults.known_host_key
        key_path = machine.key_path or self.ssh_defaults.key_path
        if not host_key or not key_path:
            missing = "host_key" if not host_key else "key_path"
            raise BuilderRefused(
                f"pool {self.pool}: neither `new` nor the pool's config gives {missing}, "
                f"needed to log in to {machine.address} safely"
            )
        return replace(
            self.ssh_defaults,
            name=machine.name,
            address=machine.address,
            port=machine.port or self.ssh_defaults.port,
            user=machine.user or self.ssh_defaults.user,
            known_host_key=host_key,
            key_path=key_path,
        )
