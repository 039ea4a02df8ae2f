"""Which transport runs a builder's jobs: the kind of its pool decides.

Only the worker calls this; the SSH client never runs in the portal's web process.
"""

from typing import TYPE_CHECKING

from apps.fleet.models import Builder, PoolKind
from apps.fleet.services import PoolConfigError, ssh_host_config
from builders.transports import BuilderRefused, Transport
from builders.transports.local import LocalTransport

if TYPE_CHECKING:
    from builders.transports.ssh import SshTransport


def transport_for(builder: Builder | None) -> Transport:
    """The transport of `builder`'s pool; a task without a builder runs locally."""
    kind = builder.pool.kind if builder is not None else PoolKind.LOCAL
    if kind == PoolKind.LOCAL:
        return LocalTransport()
    if kind == PoolKind.SSH:
        return ssh_transport(builder)
    raise BuilderRefused(f"builder {builder.name}: pools of kind {kind} cannot run builds yet")


def ssh_transport(builder: Builder) -> "SshTransport":
    from builders.transports.ssh import SshHost, SshTransport

    try:
        host = ssh_host_config(builder)
    except PoolConfigError as error:
        raise BuilderRefused(str(error)) from error
    fields = ("address", "known_host_key", "key_path", "user", "port", "work_dir")
    options = {key: host[key] for key in (*fields, "workspaces_dir") if key in host}
    blocked = tuple(host.get("blocked_networks", ()))
    return SshTransport(SshHost(name=builder.name, blocked_networks=blocked, **options))
