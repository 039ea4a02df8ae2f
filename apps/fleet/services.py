"""Every write to the fleet: builder pools and builders."""

import logging
import platform

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.core.errors import PermissionDenied
from apps.fleet.models import (
    MACHINE_POOL_KINDS,
    Builder,
    BuilderPool,
    BuilderState,
    BuilderStateChange,
    PoolChange,
    PoolChangeAction,
    PoolKind,
)
from builders.arches import GUEST_ARCHES, host_arch, native_arches

logger = logging.getLogger(__name__)
LOCAL_POOL_NAME = "local"


def builder_state_set(*, builders, state: str, reason: str = "") -> int:
    """The one way a builder's state changes: each change is kept, with its reason.

    `builders` is a queryset of the builders to change (filtered on the states they may
    leave); those already in `state` for the same reason stay as they are. The count.
    """
    reason = reason[:500]
    with transaction.atomic():
        changing = list(
            builders.select_for_update()
            .exclude(state=state, state_reason=reason)
            .values_list("pk", "state")
        )
        Builder.objects.filter(pk__in=[pk for pk, _ in changing]).update(
            state=state, state_reason=reason
        )
        BuilderStateChange.objects.bulk_create(
            BuilderStateChange(builder_id=pk, previous_state=before, state=state, reason=reason)
            for pk, before in changing
        )
    return len(changing)


def builder_drain(*, builder_ids: list[int], user: User | None = None) -> int:
    """Let builders finish what they run but take no new tasks. Returns the count."""
    return builder_state_set(
        builders=Builder.objects.filter(pk__in=builder_ids),
        state=BuilderState.DRAINING,
        reason=f"drained by {user.username}" if user else "drained",
    )


def builder_resume(*, builder_ids: list[int], user: User | None = None) -> int:
    return builder_state_set(
        builders=Builder.objects.filter(pk__in=builder_ids),
        state=BuilderState.READY,
        reason=f"put back in service by {user.username}" if user else "",
    )


def local_pool_ensure() -> Builder:
    """The local pool and its one builder: this host's arch, LOCAL_BUILDER_SLOTS slots.

    Created on first use so a single machine builds out of the box; operators change
    slots, arches or state in the console afterwards.
    """
    pool, created = BuilderPool.objects.get_or_create(
        name=LOCAL_POOL_NAME,
        defaults={"kind": PoolKind.LOCAL, "arches": [host_arch()], "max_builders": 1},
    )
    if created:
        _pool_change_log(pool=pool, user=None, action=PoolChangeAction.ADD, fields=POOL_FIELDS)
    builder, _ = Builder.objects.get_or_create(
        name=f"local-{platform.node() or 'host'}",
        defaults={
            "pool": pool,
            "hostname": platform.node(),
            "arches": pool.arches,
            "slots": settings.LOCAL_BUILDER_SLOTS,
        },
    )
    return builder


# --- pool changes: superusers only, each one logged ---------------------------------------

# Everything a pool is: its kind, config (hosts, `new`/`delete` commands, VM image) and
# limits decide what runs on builder machines, as root there.
POOL_FIELDS = (
    "name",
    "kind",
    "arches",
    "arch",
    "enabled",
    "max_builders",
    "config",
    "limit_processes",
    "limit_memory_mib",
    "limit_cpu_seconds",
    "limit_disk_mib",
    "limit_cpu_percent",
    "min_ready",
    "reuse_builds",
    "tags",
)
MASKED = "********"


def pool_save(*, pool: BuilderPool, user: User) -> list[Builder]:
    """Add or change a pool and make the builders it asks for; superusers only, logged.

    PermissionDenied for anyone else, PoolConfigError for a config the kind cannot use
    (nothing is saved then). The log holds the new value of each field that changed.
    """
    _superuser_check(user, "add or change a builder pool")
    pool_config_check(pool)
    with transaction.atomic():
        before = BuilderPool.objects.filter(pk=pool.pk).values(*POOL_FIELDS).first() or {}
        changed = [field for field in POOL_FIELDS if before.get(field) != getattr(pool, field)]
        pool.save()
        action = PoolChangeAction.CHANGE if before else PoolChangeAction.ADD
        if changed or action == PoolChangeAction.ADD:
            _pool_change_log(pool=pool, user=user, action=action, fields=changed)
        return pool_sync(pool=pool)


def pool_delete(*, pool: BuilderPool, user: User) -> None:
    """Delete a pool with its builders; superusers only, logged."""
    _superuser_check(user, "delete a builder pool")
    with transaction.atomic():
        _pool_change_log(pool=pool, user=user, action=PoolChangeAction.DELETE, fields=())
        pool.delete()


def _superuser_check(user: User | None, what: str) -> None:
    if user is None or not (user.is_active and user.is_superuser):
        raise PermissionDenied(
            f"Only a superuser may {what}: a pool's commands, limits and image decide what "
            "runs as root on its builders."
        )


def config_without_secrets(config):
    """A pool's config with the values of `env` masked: cloud credentials live there."""
    if isinstance(config, dict) and isinstance(config.get("env"), dict):
        return {**config, "env": dict.fromkeys(config["env"], MASKED)}
    return config


def _pool_change_log(*, pool: BuilderPool, user: User | None, action: str, fields) -> None:
    # The log says that a credential changed, never what it is.
    changes = {field: getattr(pool, field) for field in fields}
    if "config" in changes:
        changes["config"] = config_without_secrets(changes["config"])
    PoolChange.objects.create(
        pool=pool, pool_name=pool.name, user=user, action=action, changes=changes
    )


# --- SSH pools: static hosts from the pool's config ----------------------------------------

SSH_HOST_REQUIRED = ("name", "address", "key_path", "known_host_key")
SSH_HOST_OPTIONAL = {"port": int, "user": str, "work_dir": str, "workspaces_dir": str}
_KIND_NAMES = {int: "a number", str: "a text"}


class PoolConfigError(ValueError):
    """A pool's config cannot be used; the message says which entry and why."""


def ssh_pool_hosts(pool: BuilderPool) -> list[dict]:
    """The host entries of an ssh pool's config, checked, with arches and slots filled in."""
    hosts = pool.config.get("hosts") if isinstance(pool.config, dict) else None
    if not isinstance(hosts, list) or not hosts:
        raise PoolConfigError(f'Pool {pool.name}: config needs "hosts", a list of hosts.')
    checked, names = [], set()
    for index, host in enumerate(hosts):
        checked.append(_checked_ssh_host(pool, index, host))
        if checked[-1]["name"] in names:
            raise PoolConfigError(f"Pool {pool.name}: two hosts are named {host['name']!r}.")
        names.add(checked[-1]["name"])
    return checked


def _checked_ssh_host(pool: BuilderPool, index: int, host) -> dict:
    where = f"Pool {pool.name}, host {index + 1}"
    if not isinstance(host, dict):
        raise PoolConfigError(f"{where}: each host is an object.")
    missing = [key for key in SSH_HOST_REQUIRED if not isinstance(host.get(key), str)]
    if missing:
        raise PoolConfigError(f"{where}: missing {', '.join(missing)}.")
    for key, kind in SSH_HOST_OPTIONAL.items():
        if key in host and not isinstance(host[key], kind):
            raise PoolConfigError(f"{where}: {key} must be {_KIND_NAMES[kind]}.")
    if not host["known_host_key"].startswith(("ssh-", "ecdsa-")):
        raise PoolConfigError(f'{where}: known_host_key is a public key ("ssh-ed25519 AAAA...").')
    _check_blocked_networks(where, host)
    slots = host.get("slots", 1)
    if not isinstance(slots, int) or slots < 1:
        raise PoolConfigError(f"{where}: slots must be a positive number.")
    return {**host, "arches": host.get("arches") or pool.arches, "slots": slots}


def ssh_builder_name(pool: BuilderPool, host_name: str) -> str:
    return f"{pool.name}-{host_name}"


def ssh_pool_sync(*, pool: BuilderPool) -> list[Builder]:
    """One builder per host of the pool's config; builders of removed hosts are drained."""
    hosts = ssh_pool_hosts(pool)
    builders = []
    for host in hosts:
        builder, _ = Builder.objects.update_or_create(
            name=ssh_builder_name(pool, host["name"]),
            defaults={
                "pool": pool,
                "hostname": host["address"],
                "arches": host["arches"],
                "slots": host["slots"],
            },
        )
        builders.append(builder)
    builder_state_set(
        builders=pool.builders.exclude(pk__in=[b.pk for b in builders]),
        state=BuilderState.DRAINING,
        reason="its host is no longer in the pool's config",
    )
    return builders


def ssh_host_config(builder: Builder) -> dict:
    """The config entry of an ssh builder's host."""
    for host in ssh_pool_hosts(builder.pool):
        if ssh_builder_name(builder.pool, host["name"]) == builder.name:
            return host
    raise PoolConfigError(f"Builder {builder.name} is no longer in its pool's config.")


# --- vm and command pools: a machine per task ---------------------------------------------

COMMAND_REQUIRED = ("new", "delete")
COMMAND_OPTIONAL = {
    "new_timeout": int,
    "delete_timeout": int,
    "port": int,
    "user": str,
    "key_path": str,
    "known_host_key": str,
    "work_dir": str,
    "workspaces_dir": str,
    "reuse_idle_seconds": int,
    # Where the keys of SSH access for debugging go on a machine (`new` may say instead).
    "debug_keys_file": str,
}
VM_OPTIONAL = {
    "memory_mib": int,
    "cpus": int,
    "disk_mib": int,
    "boot_timeout": int,
    "accel": str,
    "state_dir": str,
    "reuse_idle_seconds": int,
}
VM_ACCELERATORS = ("auto", "kvm", "tcg")


def command_pool_config(pool: BuilderPool) -> dict:
    """A command pool's config, checked: `new` and `delete` are a shell line or a list."""
    config = _pool_config(pool)
    for key in COMMAND_REQUIRED:
        value = config.get(key)
        is_argv = isinstance(value, list) and value and all(isinstance(v, str) for v in value)
        if not (isinstance(value, str) and value.strip()) and not is_argv:
            raise PoolConfigError(
                f"Pool {pool.name}: config needs {key!r}, a shell command or a list of arguments."
            )
    _check_types(pool, config, COMMAND_OPTIONAL)
    env = config.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise PoolConfigError(f'Pool {pool.name}: env is an object of texts, like {{"A": "b"}}.')
    _check_blocked_networks(f"Pool {pool.name}", config)
    return config


def vm_pool_config(pool: BuilderPool) -> dict:
    """A vm pool's config, checked: the image and the size of each VM."""
    config = _pool_config(pool)
    if not isinstance(config.get("image"), str):
        raise PoolConfigError(
            f'Pool {pool.name}: config needs "image", the directory that '
            "`python3 -m builders.vm image` printed."
        )
    _check_types(pool, config, VM_OPTIONAL)
    for key in ("memory_mib", "cpus", "disk_mib", "boot_timeout"):
        if key in config and config[key] < 1:
            raise PoolConfigError(f"Pool {pool.name}: {key} must be a positive number.")
    if config.get("accel", "auto") not in VM_ACCELERATORS:
        raise PoolConfigError(f"Pool {pool.name}: accel is one of {', '.join(VM_ACCELERATORS)}.")
    vm_pool_arches(pool)
    return config


def pool_is_emulated(pool: BuilderPool) -> bool:
    """Whether the pool's machines emulate another arch than this host's (slow, and their
    image has only what RPM builds need)."""
    return pool.kind == PoolKind.VM and pool.arch != host_arch()


def vm_pool_arches(pool: BuilderPool) -> list[str]:
    """The arches a vm pool's machines build: those declared, or else the VMs' own arch.

    A VM builds only what its arch builds natively (an x86_64 one builds i686 too); any
    other declared arch would fail each of its builds, so the pool is refused instead.
    """
    if pool.arch not in GUEST_ARCHES:
        raise PoolConfigError(f"Pool {pool.name}: arch is one of {', '.join(GUEST_ARCHES)}.")
    arches = pool.served_arches
    foreign = [arch for arch in arches if arch not in native_arches(pool.arch)]
    if foreign:
        raise PoolConfigError(
            f"Pool {pool.name}: its {pool.arch} VMs cannot build {', '.join(foreign)} "
            "(set the pool's arch, or leave its arches empty)."
        )
    return arches


def _pool_config(pool: BuilderPool) -> dict:
    if not isinstance(pool.config, dict):
        raise PoolConfigError(f"Pool {pool.name}: config is an object.")
    return pool.config


def _check_types(pool: BuilderPool, config: dict, types: dict) -> None:
    for key, kind in types.items():
        if key in config and (not isinstance(config[key], kind) or isinstance(config[key], bool)):
            raise PoolConfigError(f"Pool {pool.name}: {key} must be {_KIND_NAMES[kind]}.")


def _check_blocked_networks(where: str, config: dict) -> None:
    blocked = config.get("blocked_networks", [])
    if not isinstance(blocked, list) or not all(isinstance(item, str) for item in blocked):
        raise PoolConfigError(f'{where}: blocked_networks is a list like ["192.0.2.0/24"].')


def machine_builder_name(pool: BuilderPool) -> str:
    return f"{pool.name}-machines"


def machine_pool_sync(*, pool: BuilderPool) -> Builder:
    """The one builder of a vm or command pool: a slot per machine the pool may run at once."""
    pool_config_check(pool)
    builder, _ = Builder.objects.update_or_create(
        name=machine_builder_name(pool),
        defaults={
            "pool": pool,
            "hostname": f"{pool.kind} pool",
            "arches": vm_pool_arches(pool) if pool.kind == PoolKind.VM else pool.arches,
            "slots": max(pool.max_builders, 1),
        },
    )
    return builder


def pool_config_check(pool: BuilderPool) -> None:
    """PoolConfigError when the pool's kind cannot use its config, or its tags are no list
    of words."""
    tags = pool.tags
    if not isinstance(tags, list) or not all(isinstance(t, str) and t.strip() for t in tags):
        raise PoolConfigError(f'Pool {pool.name}: tags is a list like ["cloud_a"].')
    if pool.kind == PoolKind.SSH:
        ssh_pool_hosts(pool)
    elif pool.kind == PoolKind.VM:
        vm_pool_config(pool)
    elif pool.kind == PoolKind.COMMAND:
        command_pool_config(pool)


def pool_sync(*, pool: BuilderPool) -> list[Builder]:
    """The builders a pool's config asks for (none to make for the local pool)."""
    if pool.kind == PoolKind.SSH:
        return ssh_pool_sync(pool=pool)
    if pool.kind in MACHINE_POOL_KINDS:
        return [machine_pool_sync(pool=pool)]
    return list(pool.builders.all())


def pools_sync() -> None:
    """Builders for every enabled pool; a pool with a broken config is logged, skipped."""
    for pool in BuilderPool.objects.filter(enabled=True).exclude(kind=PoolKind.LOCAL):
        try:
            pool_sync(pool=pool)
        except PoolConfigError as error:
            logger.error("%s", error)


# --- health -------------------------------------------------------------------------------


def builder_seen(*, builder_id: int | None, runner_version: str = "") -> None:
    """The builder answered (a running task's heartbeat, a finished task or a probe)."""
    if builder_id is None:
        return
    fields = {"last_seen_on": timezone.now()}
    if runner_version:
        fields["runner_version"] = runner_version
    Builder.objects.filter(pk=builder_id).update(**fields)


def builder_mark_down(*, builder_id: int, reason: str) -> bool:
    """Take a builder out of scheduling until an operator (or a probe) brings it back."""
    changed = Builder.objects.filter(pk=builder_id).exclude(state=BuilderState.DOWN)
    return builder_state_set(builders=changed, state=BuilderState.DOWN, reason=reason) == 1


def builder_back(*, builder_id: int) -> bool:
    """A down builder answered its probe: ready again. True when it was down."""
    down = Builder.objects.filter(pk=builder_id, state=BuilderState.DOWN)
    return builder_state_set(builders=down, state=BuilderState.READY) == 1
