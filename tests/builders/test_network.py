"""Tests for builders/network.py: builds with network reach the outside, never the host."""

from __future__ import annotations

import fcntl
import ipaddress
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from builders.livelog import LiveLog
from builders.network import EXTRA_BLOCKED_ENV, HOST_NETWORK_ENV, host_addresses
from builders.protocol import JobSpec
from builders.runner import run_job
from builders.sandbox import Watchdog, Workspace, run_sandboxed
from tests.builders.helpers import LocalServer, world_readable_dir
from tests.builders.scm_helpers import GitDaemon, make_repo, packed_files
from tests.builders.srpm_factory import make_srpm
from tests.builders.ssh_helpers import SUBNET_LOCK

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces for the test need root"),
    pytest.mark.skipif(shutil.which("slirp4netns") is None, reason="slirp4netns not installed"),
]


@pytest.fixture(autouse=True)
def isolated_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Production behaviour: no development switch to the host's network."""
    monkeypatch.delenv(HOST_NETWORK_ENV, raising=False)


class Listener:
    """A TCP listener on all of the host's addresses; remembers who connected."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("0.0.0.0", 0))  # noqa: S104 - every address on purpose
        self.port = self.socket.getsockname()[1]
        self.peers: list[str] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, peer = self.socket.accept()
            except OSError:
                return
            self.peers.append(peer[0])
            connection.close()

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    opened = Listener()
    yield opened
    opened.close()


def host_ip() -> str | None:
    """An address of this host other than loopback and link-local, if it has one."""
    for network in host_addresses():
        address = ipaddress.ip_network(network).network_address
        if address.version == 4 and not (address.is_loopback or address.is_link_local):
            return str(address)
    return None


class OutsideServer:
    """An HTTP server in a network namespace of its own, routed from the host over a veth.

    Stands in for the internet: a public-looking address (TEST-NET-2) that is neither
    the host's nor a private one, reachable only through the host's routing.
    """

    def __init__(self, directory: Path) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.namespace = f"coprsite-out-{suffix}"
        self.host_side = f"cso{suffix}"
        self.host_address = self.address = ""  # a free /30 of 198.51.100.0/24, at start()
        self.port = 8080
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        inside = f"csi{self.host_side[3:]}"
        # Parallel test processes (pytest -n) each take a /30 that no other one has: chosen
        # and given to the link under the lock the SSH test hosts take their subnets under.
        with open(SUBNET_LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            base = min(set(range(4, 252, 4)) - used_outside_subnets())
            self.host_address = f"198.51.100.{base + 1}"
            self.address = f"198.51.100.{base + 2}"
            for command in (
                ["ip", "netns", "add", self.namespace],
                ["ip", "link", "add", self.host_side, "type", "veth", "peer", "name", inside],
                ["ip", "link", "set", inside, "netns", self.namespace],
                ["ip", "addr", "add", f"{self.host_address}/30", "dev", self.host_side],
            ):
                subprocess.run(command, check=True, capture_output=True)
        for command in (
            ["ip", "link", "set", self.host_side, "up"],
            ["ip", "-n", self.namespace, "addr", "add", f"{self.address}/30", "dev", inside],
            ["ip", "-n", self.namespace, "link", "set", inside, "up"],
            ["ip", "-n", self.namespace, "link", "set", "lo", "up"],
        ):
            subprocess.run(command, check=True, capture_output=True)
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", self.namespace, "python3", "-m", "http.server"]
            + [str(self.port), "--bind", self.address, "--directory", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((self.address, self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the outside server did not start")

    def url(self, path: str) -> str:
        return f"http://{self.address}:{self.port}/{path}"

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        subprocess.run(["ip", "link", "del", self.host_side], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.namespace], capture_output=True)


@pytest.fixture
def outside() -> Iterator[OutsideServer]:
    if subprocess.run(["ip", "netns", "list"], capture_output=True).returncode != 0:
        pytest.skip("this kernel or container cannot make network namespaces (ip netns)")
    directory = world_readable_dir("coprsite-test-outside-")
    (directory / "ping").write_text("pong")
    server = OutsideServer(directory)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory)


def used_outside_subnets() -> set[int]:
    """The first address of every 198.51.100.0/30 this machine has an address in."""
    listing = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True)
    return {int(n) // 4 * 4 for n in re.findall(r"inet 198\.51\.100\.(\d+)/", listing.stdout)}


def probe_lines(listener: Listener, outside: OutsideServer) -> list[str]:
    """Shell lines that try the host's listener and the outside; one MARKER=value each."""
    targets = {"LOOPBACK": "127.0.0.1"}
    address = host_ip()
    if address:
        targets["HOSTIP"] = address
    lines = [
        f"echo \"{name}=$(bash -c 'exec 3<>/dev/tcp/{ip}/{listener.port}' 2>/dev/null"
        ' && echo OPEN || echo BLOCKED)"'
        for name, ip in targets.items()
    ]
    # The job cannot undo the routes that keep it away from the host.
    lines.append(
        'echo "ROUTES=$(ip route del prohibit 127.0.0.0/8 2>/dev/null'
        ' && echo CHANGED || echo KEPT)"'
    )
    # Positive control: the same build reaches an address outside the host.
    lines.append(f'echo "OUTSIDE=$(curl -s -m 5 {outside.url("ping")} || echo BLOCKED)"')
    return lines


def markers(log: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-Z]+)=(.*)$", log, flags=re.MULTILINE))


def test_hostile_build_with_network_reaches_outside_but_not_the_host(
    tmp_path: Path,
    listener: Listener,
    outside: OutsideServer,
    rpm_job: Callable[..., JobSpec],
    result_dir: Path,
) -> None:
    script = "\n".join([*probe_lines(listener, outside), "gcc -o %{name} hello.c"])
    srpm = make_srpm(tmp_path, build_script=script)

    result = run_job(rpm_job(srpm, enable_net=True))

    seen = markers((result_dir / "builder-live.log").read_text())
    assert result.state == "succeeded", result.failure_reason
    assert seen["OUTSIDE"] == "pong"
    assert seen["LOOPBACK"] == "BLOCKED"
    assert seen["ROUTES"] == "KEPT"
    if host_ip():
        assert seen["HOSTIP"] == "BLOCKED"
    assert listener.peers == []


def test_custom_source_script_cannot_reach_the_host(
    listener: Listener,
    outside: OutsideServer,
    source_job: Callable[..., JobSpec],
    result_dir: Path,
) -> None:
    script = "#!/bin/sh\n" + "\n".join(probe_lines(listener, outside)) + "\n"
    source = {"type": "custom", "script": script, "chroot": "fedora-43-x86_64"}

    result = run_job(source_job(source))

    log = (result_dir / "builder-live.log").read_text()
    seen = markers(log)
    # The script makes no SRPM; what matters is what it could reach on the way.
    assert result.state == "failed"
    assert seen["OUTSIDE"] == "pong"
    assert seen["LOOPBACK"] == "BLOCKED"
    assert seen["ROUTES"] == "KEPT"
    assert "Network: outbound only, through slirp4netns" in log
    if host_ip():
        assert seen["HOSTIP"] == "BLOCKED"
    assert listener.peers == []


def test_source_download_from_loopback_fails_with_a_reason(
    http_server: LocalServer, hello_srpm: Path, source_job: Callable[..., JobSpec]
) -> None:
    shutil.copyfile(hello_srpm, http_server.directory / "hello.src.rpm")
    url = http_server.url("hello.src.rpm")

    result = run_job(source_job({"type": "link", "url": url}))

    assert result.state == "failed"
    assert "could not connect to 127.0.0.1" in result.failure_reason
    assert "not loopback, private or link-local networks" in result.failure_reason
    assert http_server.requests == []


def test_git_clone_from_this_machine_says_what_to_set(
    git_daemon: GitDaemon, source_job: Callable[..., JobSpec]
) -> None:
    # ALLOW_PRIVATE_URLS let the portal take the URL; the sandbox still cannot reach it.
    make_repo(git_daemon.base / "hello", packed_files(version="1.0"))
    source = {"type": "scm", "scm_type": "git", "clone_url": git_daemon.url("hello")}

    result = run_job(source_job(source))

    assert result.state == "failed"
    assert result.failure_reason.startswith(
        "127.0.0.1 is this machine or a private network, which builds do not reach"
    )
    assert f"set {HOST_NETWORK_ENV}=1 for the builder" in result.failure_reason
    assert result.failure_reason.endswith("errno=Connection refused")


def run_curl(workspace: Workspace, url: str, *, network: bool, log_path: Path) -> tuple[int, str]:
    with LiveLog(log_path) as log:
        outcome = run_sandboxed(
            ["curl", "-sS", "-m", "5", url],
            workspace,
            network=network,
            log=log,
            watchdog=Watchdog(lambda: False, 60),
        )
    return outcome.exit_code, "\n".join(outcome.lines)


def test_network_on_reaches_the_outside_and_off_does_not(
    outside: OutsideServer, tmp_path: Path
) -> None:
    workspace = Workspace.create()
    try:
        with_net = run_curl(workspace, outside.url("ping"), network=True, log_path=tmp_path / "1")
        without = run_curl(workspace, outside.url("ping"), network=False, log_path=tmp_path / "2")
    finally:
        workspace.cleanup()

    assert with_net == (0, "pong")
    assert without[0] != 0
    assert "pong" not in without[1]
    # The user-mode network stack ended with the command.
    helpers = subprocess.run(["pgrep", "-P", str(os.getpid()), "slirp4netns"], capture_output=True)
    assert helpers.stdout == b""


def test_the_operator_can_block_further_networks(
    outside: OutsideServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # E.g. the public address of the service's database host.
    monkeypatch.setenv(EXTRA_BLOCKED_ENV, f"{outside.address}/32")
    workspace = Workspace.create()
    try:
        code, output = run_curl(
            workspace, outside.url("ping"), network=True, log_path=tmp_path / "1"
        )
    finally:
        workspace.cleanup()

    assert code != 0
    assert "pong" not in output


def test_a_build_with_network_leaves_the_hosts_named_namespaces_alone(tmp_path: Path) -> None:
    """slirp4netns's sandbox lets go of the mounts it was started with; as root in the host's
    mount namespace that unmounted every `ip netns` name of the host (/run/netns is shared)."""
    name = f"coprsite-keep-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    try:
        workspace = Workspace.create()
        try:
            with LiveLog(tmp_path / "log") as log:
                outcome = run_sandboxed(
                    ["true"], workspace, network=True, log=log, watchdog=Watchdog(lambda: False, 60)
                )
        finally:
            workspace.cleanup()

        assert outcome.exit_code == 0
        still_there = subprocess.run(["ip", "netns", "exec", name, "true"], capture_output=True)
        assert still_there.returncode == 0, still_there.stderr
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
