"""Does PUBLIC_URL reach the address this process serves? Checked at start-up, Django-free.

Every absolute link the service hands out (logs, results, .repo files, the hub config that
`dnf copr` reads) starts with PUBLIC_URL. `make run PORT=18300` with PUBLIC_URL left at
port 8000 would serve pages whose every such link misses; runserver and gunicorn say so
when they start. A PUBLIC_URL naming another host (a proxy in front) is not questioned.
"""

import ipaddress
from urllib.parse import urlsplit

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
# Addresses that bind every interface (recognized here, never bound).
WILDCARDS = {"", "0.0.0.0", "::", "*"}  # noqa: S104
DEFAULT_PORTS = {"http": 80, "https": 443}


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def public_url_for(host: str, port: int | str) -> str:
    """The URL a browser on this machine uses for what `make run HOST=.. PORT=..` serves."""
    host = host.strip("[]")
    if host in WILDCARDS:
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    return f"http://{host}:{port}"


def public_url_mismatch(public_url: str, host: str, port: int | str) -> str:
    """Why links made from `public_url` miss `host:port`, the address served; "" if they don't."""
    parts = urlsplit(public_url)
    public_host = (parts.hostname or "").lower()
    served_host = host.strip("[]").lower()
    try:
        public_port = parts.port or DEFAULT_PORTS.get(parts.scheme, 80)
    except ValueError:
        return f"PUBLIC_URL {public_url} has no valid port."
    direct = is_loopback(public_host) or public_host == served_host
    if not direct:
        return ""  # another name for this host, or a proxy in front: the operator's call
    suggestion = f"set PUBLIC_URL={public_url_for(host, port)} (or the name clients use)"
    if public_port != int(port):
        return (
            f"PUBLIC_URL is {public_url}, but this serves on {served_host or '*'}:{port}: "
            f"links to logs, results, .repo files and the hub config would miss; {suggestion}."
        )
    if is_loopback(public_host) and not (is_loopback(served_host) or served_host in WILDCARDS):
        return (
            f"PUBLIC_URL is {public_url}, which only this machine reaches, but this serves on "
            f"{served_host}:{port}; {suggestion}."
        )
    return ""
