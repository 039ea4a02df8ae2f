"""Real SSH builder hosts for tests: a network namespace with its own sshd, host key and key.

Each host is a network namespace joined to this one by a veth pair, 198.18.<n>.1 here and
198.18.<n>.2 there (the benchmarking range of RFC 2544, never a real network). Its sshd has
its own host key and accepts one client key for root. The filesystem is this machine's, so
each host also gets a work directory of its own: that is where its runner copy and jobs go.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path

from builders.transports.ssh import SshHost, agent_key

SSHD = "/usr/sbin/sshd"
# Test processes running side by side (pytest -n) pick free subnets under this lock.
SUBNET_LOCK = Path("/run/coprsite-test-subnets.lock")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)],
        check=True,
    )
    return path.with_suffix(".pub").read_text().strip()


@dataclass
class SshTestHost:
    name: str
    namespace: str
    address: str
    directory: Path
    host_public_key: str
    client_key: Path
    link: str = ""  # this machine's end of the host's veth pair
    sshd: subprocess.Popen[bytes] | None = None

    @property
    def gateway(self) -> str:
        """This machine's address on the host's link: the service, seen from the host."""
        return self.address.rsplit(".", 1)[0] + ".1"

    @property
    def work_dir(self) -> Path:
        return self.directory / "work"

    def ssh_host(self, **overrides: object) -> SshHost:
        host = SshHost(
            name=self.name,
            address=self.address,
            known_host_key=self.host_public_key,
            key_path=str(self.client_key),
            work_dir=str(self.work_dir),
        )
        return replace(host, **overrides)  # type: ignore[arg-type]

    def pool_host_config(self, **overrides: object) -> dict[str, object]:
        """This host as an entry of an ssh pool's config."""
        return {
            "name": self.name,
            "address": self.address,
            "known_host_key": self.host_public_key,
            "key_path": str(self.client_key),
            "work_dir": str(self.work_dir),
            "arches": ["x86_64"],
            "slots": 1,
            **overrides,
        }

    def start_sshd(self, extra_config: str = "") -> None:
        config = self.directory / "sshd_config"
        config.write_text(
            f"ListenAddress {self.address}\n"
            f"HostKey {self.directory / 'host_key'}\n"
            f"AuthorizedKeysFile {self.directory / 'authorized_keys'}\n"
            f"PidFile {self.directory / 'sshd.pid'}\n"
            "PermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "UsePAM no\n"
            "StrictModes no\n"
            # Logs each login and each command a login shell runs (sessions_started).
            "LogLevel VERBOSE\n" + extra_config
        )
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation
        self.sshd = subprocess.Popen(
            ["ip", "netns", "exec", self.namespace, SSHD, "-D", "-e", "-f", str(config)],
            stderr=open(self.directory / "sshd.log", "ab"),  # noqa: SIM115 - kept by sshd
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((self.address, 22), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"sshd of {self.name} did not start: {self.sshd_log()}")

    def cut_link(self) -> None:
        """Take this machine's end of the host's link down: the host and its processes run
        on, unreachable, as across a broken network between clouds."""
        _ip("link", "set", self.link, "down")

    def restore_link(self) -> None:
        _ip("link", "set", self.link, "up")

    def kill_everything(self) -> None:
        """Kill sshd and every process in the host's namespace, like pulling its plug."""
        pids = subprocess.run(
            ["ip", "netns", "pids", self.namespace], capture_output=True, text=True
        ).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        if self.sshd is not None:
            self.sshd.wait(10)
            self.sshd = None

    def processes(self) -> list[int]:
        """Processes running in the host's namespace other than sshd (the listener and the
        master connections it serves) and the transport's command agent: those of jobs."""
        pids = subprocess.run(
            ["ip", "netns", "pids", self.namespace], capture_output=True, text=True
        ).stdout.split()
        return [int(pid) for pid in pids if not _is_sshd_or_agent(int(pid))]

    def logins(self) -> int:
        """Authentications sshd accepted so far."""
        return self.sshd_log().count("Accepted publickey")

    def sessions_started(self) -> int:
        """Commands sshd ran through the login's shell so far (forwarded channels to a
        socket are not sessions: sshd starts no shell for them)."""
        return self.sshd_log().count("Starting session: command")

    def sshd_log(self) -> str:
        path = self.directory / "sshd.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _is_sshd_or_agent(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # gone meanwhile
    agent = any(part.endswith(b".py") and b"/.coprsite-agent/agent-" in part for part in command)
    return agent or command[0].startswith(b"sshd") or command[0] == SSHD.encode()


def used_subnets() -> set[int]:
    """The n of every 198.18.n.0/24 this machine has an address in."""
    listing = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True)
    return {int(n) for n in re.findall(r"inet 198\.18\.(\d+)\.", listing.stdout)}


def create_host(directory: Path, name: str) -> SshTestHost:
    directory.mkdir(parents=True)
    (directory / "work").mkdir()
    host_key = _keygen(directory / "host_key")
    client_public = _keygen(directory / "client_key")
    (directory / "authorized_keys").write_text(client_public + "\n")
    with open(SUBNET_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        subnet = min(set(range(20, 251)) - used_subnets())
        namespace = f"coprsite-ssh-{os.getpid()}-{subnet}"
        outside, inside = f"cps{subnet}o{os.getpid() % 1000}", f"cps{subnet}i{os.getpid() % 1000}"
        _ip("netns", "add", namespace)
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", namespace)
        _ip("addr", "add", f"198.18.{subnet}.1/24", "dev", outside)
    _ip("link", "set", outside, "up")
    _ip("-n", namespace, "addr", "add", f"198.18.{subnet}.2/24", "dev", inside)
    _ip("-n", namespace, "link", "set", inside, "up")
    _ip("-n", namespace, "link", "set", "lo", "up")
    host = SshTestHost(
        name=name,
        namespace=namespace,
        address=f"198.18.{subnet}.2",
        directory=directory,
        host_public_key=host_key,
        client_key=directory / "client_key",
        link=outside,
    )
    host.start_sshd()
    return host


def remove_host(host: SshTestHost) -> None:
    host.kill_everything()
    subprocess.run(["ip", "netns", "del", host.namespace], capture_output=True)
    # Its agent was killed with it; the hosts share this machine's home, where it listened.
    for path in (Path.home() / ".coprsite-agent").glob(f"{agent_key(host.ssh_host())}.sock*"):
        path.unlink(missing_ok=True)
