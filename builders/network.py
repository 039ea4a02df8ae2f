"""Outbound-only network for a sandbox: its own namespace, slirp4netns, and no way home.

A job with network runs in a network namespace of its own. slirp4netns (a user-mode TCP/IP
stack) gives it a default route to the outside; it makes ordinary host sockets for each
connection, so without more care a build could reach everything the host can. Hence:

- `--disable-host-loopback`: the gateway address never leads to the host's 127.0.0.1;
- `prohibit` routes, added inside the namespace before anything of the job runs, for
  loopback, private, shared and link-local ranges and for every address of the host itself
  (a service listening on 0.0.0.0 is reachable on those). The job's uid has no capability
  over the namespace (it belongs to the runner), so it cannot remove them.

The namespace is made by `unshare` in front of the sandbox's command; the runner attaches
slirp4netns once the namespace exists and lets the command go on when the network is up.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import select
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

from builders.failures import BuildFailure

# Destinations a build never reaches, whatever a DNS answer or redirect says.
BLOCKED_NETWORKS = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
)
# slirp4netns's own network inside the namespace (its default): gateway .2, DNS .3.
SLIRP_CIDR = "10.0.2.0/24"
SLIRP_DNS = "10.0.2.3"
TAP_DEVICE = "tap0"
# How long slirp4netns may take to bring the device up before the job fails.
READY_TIMEOUT_SECONDS = 10
# Development only: builds share the host's network (and so its loopback services).
HOST_NETWORK_ENV = "COPRSITE_BUILD_HOST_NETWORK"
# Space- or comma-separated networks builds may not reach besides BLOCKED_NETWORKS, e.g.
# the public addresses of the service's database or broker hosts.
EXTRA_BLOCKED_ENV = "COPRSITE_BUILD_BLOCKED_NETWORKS"


def host_network_allowed() -> bool:
    """Whether the builder's operator chose the unsafe host network (tests, development)."""
    return os.environ.get(HOST_NETWORK_ENV, "") in ("1", "true", "yes")


def unreachable_host_hint(url: str) -> str:
    """What to set when a job on the isolated network failed to reach `url`'s host because it
    is this machine or a private network (a git server beside a development setup); "" when
    the builder uses the host network or the host is public."""
    if host_network_allowed():
        return ""
    host = repository_host(url)
    if not host:
        return ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
        blocked = [ipaddress.ip_network(network) for network in blocked_destinations()]
    except (OSError, BuildFailure, ValueError):
        return ""
    if not any(ipaddress.ip_address(a.split("%")[0]) in n for a in addresses for n in blocked):
        return ""
    return (
        f"{host} is this machine or a private network, which builds do not reach (their "
        f"network is outbound only): in a development setup, set {HOST_NETWORK_ENV}=1 for "
        "the builder"
    )


def repository_host(url: str) -> str:
    """The host of a clone URL, including git's scp-like `user@host:path` form."""
    if "://" in url:
        return urlsplit(url).hostname or ""
    before_path = url.split(":", 1)[0] if ":" in url else ""
    return before_path.rpartition("@")[2]


def host_addresses() -> list[str]:
    """Every address of this host's interfaces, as /32 or /128 networks."""
    found: list[str] = []
    for family in ("-4", "-6"):
        listing = subprocess.run(
            ["ip", "-j", family, "addr", "show"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
        if listing.returncode != 0:
            raise BuildFailure("the builder cannot list its own addresses (ip addr failed)")
        for interface in json.loads(listing.stdout or "[]"):
            for address in interface.get("addr_info", []):
                local = address.get("local")
                if local:
                    found.append(str(ipaddress.ip_network(local)))
    return found


def operator_blocked_networks() -> list[str]:
    """Further networks the builder's operator keeps builds from (the service's hosts)."""
    configured = os.environ.get(EXTRA_BLOCKED_ENV, "")
    networks = []
    for item in configured.replace(",", " ").split():
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError as exc:
            raise BuildFailure(f"{EXTRA_BLOCKED_ENV} holds a bad network {item!r}") from exc
    return networks


def blocked_destinations() -> list[str]:
    """The networks the namespace gets `prohibit` routes for."""
    networks = [*BLOCKED_NETWORKS, *host_addresses(), *operator_blocked_networks()]
    return list(dict.fromkeys(networks))


def _route_commands(networks: Sequence[str]) -> list[str]:
    commands = ["ip link set lo up"]
    for network in networks:
        if ":" in network:
            # Without IPv6 in the kernel there is no IPv6 route out anyway (and slirp4netns
            # is not asked for IPv6); anywhere else the route must be in place.
            commands.append(
                f"{{ ip -6 route add prohibit {network} || [ ! -e /proc/net/if_inet6 ]; }}"
            )
        else:
            commands.append(f"ip -4 route add prohibit {network}")
    return commands


class OutboundNetwork:
    """One job's namespace with slirp4netns: a command prefix plus the attach step.

    Use: `prefix()` goes in front of the sandbox command, `pass_fds` to Popen, then
    `attach(pid)` right after Popen, and `close()` when the command has ended.
    """

    def __init__(self) -> None:
        self.slirp = shutil.which("slirp4netns")
        if self.slirp is None:
            raise BuildFailure(
                "this builder cannot give builds network: slirp4netns is not installed"
            )
        # ns_ready: the command says "namespace made"; go: the runner says "network up".
        self._ns_ready_read, self._ns_ready_write = os.pipe()
        self._go_read, self._go_write = os.pipe()
        self._slirp_process: subprocess.Popen[bytes] | None = None
        self._slirp_errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self._slirp_exit_read, self._slirp_exit_write = os.pipe()
        self.pass_fds = (self._ns_ready_write, self._go_read)
        # Each closed exactly once: the worker's other threads reuse descriptor numbers.
        self._open_fds = {
            self._ns_ready_read,
            self._ns_ready_write,
            self._go_read,
            self._go_write,
            self._slirp_exit_read,
            self._slirp_exit_write,
        }

    def prefix(self) -> list[str]:
        """`unshare` a namespace, set its routes, report, wait for the network, go on."""
        as_root = os.geteuid() == 0
        # Not root: a user namespace of our own gives the capability to set routes; the
        # capabilities are dropped again before the sandbox starts.
        unshare = ["unshare", "--net"] if as_root else ["unshare", "--user", "--map-root-user"]
        if not as_root:
            unshare.append("--net")
        script = " && ".join(
            [
                *_route_commands(blocked_destinations()),
                f"echo ready >&{self._ns_ready_write}",
                f"exec {self._ns_ready_write}>&-",
                f"read -r go <&{self._go_read}",
                '[ "$go" = go ]',
                f"exec {self._go_read}<&-",
            ]
        )
        script += ' && exec "$@"'
        prefix = [*unshare, "--", "/bin/bash", "-c", script, "coprsite-network"]
        if not as_root:
            prefix += ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--"]
        return prefix

    def attach(self, pid: int) -> None:
        """Attach slirp4netns to the namespace of `pid` and let the command go on."""
        self._close(self._ns_ready_write)
        self._close(self._go_read)
        if not _read_line(self._ns_ready_read, READY_TIMEOUT_SECONDS):
            raise BuildFailure("the build's network namespace could not be set up")
        ready_read, ready_write = os.pipe()
        # slirp4netns's sandbox makes a mount namespace and lets go of the old root's mounts;
        # in the host's namespace (as root) /run/netns is shared, so that unmounted every
        # `ip netns` name of the host. A private copy keeps it from reaching them. (Not
        # root: its namespace belongs to the job's user namespace, where mounts are slaves.)
        private_mounts = ["unshare", "--mount", "--propagation", "private"]
        try:
            self._slirp_process = subprocess.Popen(
                [
                    *(private_mounts if os.geteuid() == 0 else []),
                    self.slirp,
                    "--configure",
                    "--mtu=65520",
                    "--disable-host-loopback",
                    f"--cidr={SLIRP_CIDR}",
                    "--enable-sandbox",
                    "--enable-seccomp",
                    f"--ready-fd={ready_write}",
                    f"--exit-fd={self._slirp_exit_read}",
                    # Not root: the namespace belongs to the job's own user namespace.
                    *([] if os.geteuid() == 0 else [f"--userns-path=/proc/{pid}/ns/user"]),
                    str(pid),
                    TAP_DEVICE,
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                # A file, not a pipe: nobody reads while the job runs, and a full pipe
                # would stall the network.
                stderr=self._slirp_errors,
                pass_fds=(ready_write, self._slirp_exit_read),
                start_new_session=True,
            )
        finally:
            os.close(ready_write)
        try:
            up = _read_line(ready_read, READY_TIMEOUT_SECONDS)
        finally:
            os.close(ready_read)
        if not up:
            raise BuildFailure(f"the build's network did not come up: {self._slirp_error()}")
        # A command that died meanwhile ends by itself; its exit status tells the rest.
        with contextlib.suppress(OSError):
            os.write(self._go_write, b"go\n")

    def _slirp_error(self) -> str:
        process = self._slirp_process
        if process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=1)  # it closed the ready pipe: it is on its way out
        if process is None or process.poll() is None:
            return f"slirp4netns gave no sign in {READY_TIMEOUT_SECONDS} s"
        self._slirp_errors.seek(0)
        lines = self._slirp_errors.read(4096).decode(errors="replace").strip().splitlines()
        # Its first words usually say why ('open("/dev/net/tun"): Permission denied').
        return "; ".join(lines[:3]) if lines else f"slirp4netns exit {process.returncode}"

    def close(self) -> None:
        """Stop slirp4netns and release the pipes (safe to call more than once)."""
        # Closing the write end of --exit-fd asks slirp4netns to exit; it also does so
        # by itself when the namespace's last process is gone.
        for descriptor in list(self._open_fds):
            self._close(descriptor)
        process = self._slirp_process
        if process is not None:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            self._slirp_process = None
        self._slirp_errors.close()

    def _close(self, descriptor: int) -> None:
        if descriptor in self._open_fds:
            self._open_fds.discard(descriptor)
            os.close(descriptor)


def _read_line(descriptor: int, timeout: float) -> bool:
    """Whether something arrives on `descriptor` within `timeout` seconds.

    Reads up to a newline, or to the end: slirp4netns writes "1" and closes its end.
    """
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        readable, _, _ = select.select([descriptor], [], [], left)
        if not readable:
            return False
        chunk = os.read(descriptor, 64)
        if not chunk:
            break
        data += chunk
    return bool(data.strip())


def resolv_conf() -> str:
    """The resolver configuration a namespaced build uses: slirp4netns's DNS forwarder."""
    return f"nameserver {SLIRP_DNS}\n"
