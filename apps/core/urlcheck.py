"""Which URLs users may give: repositories and source URLs never aim at the service's insides.

A URL given by a user is fetched by the web process (the submit-time check of a source
URL) or by builds (additional repositories). Neither may point at loopback, private,
link-local or otherwise non-public addresses, where PostgreSQL, Redis and the portal
listen, unless the operator allows it with ALLOW_PRIVATE_URLS (a closed test setup whose
sources and mirrors live on 127.0.0.1 or a LAN).
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

REPO_URL_SCHEMES = ("http", "https", "copr")
PRIVATE_ADDRESS_MESSAGE = "the URL points to a private or local address"


def private_urls_allowed() -> bool:
    return bool(getattr(settings, "ALLOW_PRIVATE_URLS", False))


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def host_addresses(hostname: str, port: int | None = None) -> list[str]:
    """Every address `hostname` resolves to (a literal address is its own answer)."""
    try:
        return [str(ipaddress.ip_address(hostname.strip("[]")))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(hostname, port or 80, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return sorted({info[4][0] for info in infos})


def is_private_host(hostname: str, port: int | None = None) -> bool:
    """True when the host is, or resolves to, any non-public address (or is `localhost`)."""
    name = hostname.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    return any(not is_public_address(address) for address in host_addresses(name, port))


def repo_url_errors(url) -> list[str]:
    """Copr's additional repositories: http(s) or `copr://owner/project`, nothing local."""
    if not isinstance(url, str):
        return ["A repository must be a URL string."]
    parts = urlsplit(url)
    if parts.scheme not in REPO_URL_SCHEMES or not parts.netloc:
        return [f"'{url}' is not a repository URL: use http://, https:// or copr://owner/project."]
    if parts.scheme == "copr":
        if not parts.path.strip("/") or "/" in parts.path.strip("/"):
            return [f"'{url}' is not a Copr project: use copr://owner/project."]
        return []
    try:
        port = parts.port
    except ValueError:
        return [f"'{url}' has an invalid port."]
    if not private_urls_allowed() and is_private_host(parts.hostname or "", port):
        return [f"'{url}' is not allowed: {PRIVATE_ADDRESS_MESSAGE}."]
    return []


def validate_repo_urls(value) -> None:
    """Model validator of repository lists (project and chroot `additional_repos`)."""
    if not isinstance(value, list):
        raise ValidationError("Expected a list of repository URLs.")
    errors = [message for url in value for message in repo_url_errors(url)]
    if errors:
        raise ValidationError(errors)
