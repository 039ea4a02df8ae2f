"""The dnf copr plugin's hub config for this service (`/etc/dnf/plugins/copr.d/HUB.conf`).

Without it `dnf copr enable owner/project` talks to Fedora's Copr; with it,
`dnf copr enable HUB/owner/project` talks to this service.
"""

from urllib.parse import urlsplit

from django.conf import settings

HUB_CONFIG_DIR = "/etc/dnf/plugins/copr.d"
DEFAULT_PORTS = {"http": 80, "https": 443}


def hub_name() -> str:
    """The hub's name is the service's host name: an unknown hub name is also taken as the
    host name by the plugin, so on https with port 443 the command works even without the file.
    """
    return urlsplit(settings.PUBLIC_URL).hostname or "localhost"


def hub_config_path() -> str:
    return f"{HUB_CONFIG_DIR}/{hub_name()}.conf"


def hub_config_text() -> str:
    """One section named after the hub, with the host, protocol and port of PUBLIC_URL."""
    url = urlsplit(settings.PUBLIC_URL)
    protocol = url.scheme or "https"
    port = url.port or DEFAULT_PORTS.get(protocol, 443)
    return f"[{hub_name()}]\nhostname = {url.hostname}\nprotocol = {protocol}\nport = {port}\n"


def enable_command(project_full_name: str) -> str:
    return f"dnf copr enable {hub_name()}/{project_full_name}"
