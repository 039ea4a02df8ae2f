"""SSH access for debugging, as Copr's "resubmit with SSH": checks, who sees what, release.

A build resubmitted with SSH access and the user's public keys runs its one RPM task on a
machine of its own from a vm or command pool (the scheduler sends it nowhere else). After
the build, its results already collected, the keys are installed there, each forced into
the build's sandbox (builders/debug_shell.py), and the machine is kept for the submitter
for the hours they chose, at most SSH_DEBUG_MAX_HOURS; reconcile deletes it then, or the
user gives it up sooner (`build_ssh_release`). A user holds at most SSH_DEBUG_MAX_MACHINES
such machines, builds with SSH access not yet finished included.
"""

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_ssh_public_key
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q

from apps.builds.models import FINAL_STATES, Build, TaskAttempt
from apps.core.errors import Conflict, NotFound, PermissionDenied, ServiceError
from apps.fleet.machines import DebugAccess, debug_machine_release, debug_machines_held
from apps.fleet.models import MACHINE_POOL_KINDS, BuilderPool, Machine, MachineState
from apps.projects.models import Chroot

# Key types `ssh` and sshd take today; DSA is gone from OpenSSH, security keys (sk-*)
# need the user's token on the machine and are left out.
KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
)
MIN_RSA_BITS = 2048
MAX_KEYS = 10
MAX_KEY_LINE = 16384  # an RSA key of 16384 bits is about 2,800 characters


def ssh_keys_checked(text: str) -> str:
    """The public keys of `text`, one per line, each parsed and re-written as "type
    base64" (comments and any authorized_keys options dropped); ServiceError otherwise."""
    lines = [line.strip() for line in text.replace("\r", "").split("\n") if line.strip()]
    if not lines:
        raise ServiceError(
            "Give at least one SSH public key, e.g. the line of ~/.ssh/id_ed25519.pub."
        )
    if len(lines) > MAX_KEYS:
        raise ServiceError(f"At most {MAX_KEYS} SSH public keys.")
    keys = []
    for number, line in enumerate(lines, 1):
        parts = line.split()
        if len(line) > MAX_KEY_LINE or len(parts) < 2 or parts[0] not in KEY_TYPES:
            raise ServiceError(
                f"Line {number} is not an SSH public key: it must start with one of "
                f"{', '.join(KEY_TYPES)}, then the key in base64 (as in ~/.ssh/id_*.pub)."
            )
        key_type, blob = parts[0], parts[1]
        try:
            key = load_ssh_public_key(f"{key_type} {blob}".encode())
        except (ValueError, TypeError) as error:
            raise ServiceError(f"Line {number} is not a valid {key_type} key: {error}") from error
        if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
            raise ServiceError(f"Line {number}: RSA keys need at least {MIN_RSA_BITS} bits.")
        keys.append(f"{key_type} {blob}")
    return "\n".join(keys)


def ssh_hours_checked(hours: int | None) -> int:
    """How long the machine is kept after the build: 1 hour unless asked, at most the
    operator's SSH_DEBUG_MAX_HOURS."""
    if hours is None:
        return 1
    if not 1 <= hours <= settings.SSH_DEBUG_MAX_HOURS:
        raise ServiceError(
            f"The machine can be kept between 1 and {settings.SSH_DEBUG_MAX_HOURS} hours "
            f"after the build, not {hours}."
        )
    return hours


def ssh_chroots_checked(chroots: list[Chroot]) -> list[Chroot]:
    """One chroot, served by a pool that makes machines of their own (vm, command)."""
    if len(chroots) != 1:
        raise ServiceError(
            "A build with SSH access runs in exactly one chroot, on a machine of its own: "
            "choose one."
        )
    arch = chroots[0].arch
    pools = BuilderPool.objects.filter(enabled=True, kind__in=MACHINE_POOL_KINDS)
    if not any(arch in pool.arches for pool in pools):
        raise ServiceError(
            f"No builder pool here gives builds of {arch} a machine of their own, which SSH "
            "access needs: resubmit without SSH access, or ask the operators."
        )
    return chroots


def ssh_machines_cap_check(user) -> None:
    """Refuse a further build with SSH access past the user's SSH_DEBUG_MAX_MACHINES.

    The user's row is locked until the commit: two requests cannot both take the last one.
    """
    limit = settings.SSH_DEBUG_MAX_MACHINES
    list(get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk"))
    waiting = (
        Build.objects.filter(submitter=user)
        .exclude(ssh_public_keys="")
        .exclude(state__in=list(FINAL_STATES))
        .count()
    )
    held = waiting + debug_machines_held(user.pk)
    if held >= limit:
        raise Conflict(
            f"You already hold {held} of your {limit} machines with SSH access (builds with "
            "SSH access not finished yet count too). Destroy one on its build's page, or "
            "wait until one expires, then resubmit."
        )


def task_debug_access(task) -> DebugAccess | None:
    """What the machine of an RPM task of a build with SSH access is kept for."""
    build = task.build
    if task.is_source or not build.with_ssh_access or build.submitter_id is None:
        return None
    keys = tuple(build.ssh_public_keys.splitlines())
    return DebugAccess(user_id=build.submitter_id, public_keys=keys, hours=build.ssh_hours)


def can_use_ssh_access(user, build: Build) -> bool:
    """Only the submitter, and the site's staff, see the ssh command and may give it up."""
    if not user.is_authenticated or not user.is_active:
        return False
    return user.is_staff or user.is_superuser or build.submitter_id == user.pk


def build_debug_machine(build: Build) -> Machine | None:
    """The machine a build with SSH access got for its RPM task, while it exists."""
    names = TaskAttempt.objects.filter(task__build=build, task__chroot__isnull=False).values_list(
        "machine_name", flat=True
    )
    return (
        Machine.objects.filter(name__in=[name for name in names if name])
        .filter(Q(state=MachineState.KEPT) | Q(state=MachineState.RUNNING))
        .order_by("-pk")
        .first()
    )


def ssh_command(machine: Machine) -> str:
    """The line the user runs to log in to their kept machine."""
    config = machine.pool.config if isinstance(machine.pool.config, dict) else {}
    port = machine.login.get("port") or config.get("port") or 22
    user = machine.login.get("user") or config.get("user") or "root"
    return f"ssh -p {port} {user}@{machine.address}"


def ssh_access_state(build: Build) -> dict:
    """A build's SSH access as its submitter sees it, for the page and the API."""
    machine = build_debug_machine(build)
    kept = machine is not None and machine.state == MachineState.KEPT
    if kept:
        state = "kept"
    elif machine is not None or not build.is_finished:
        state = "waiting"
    else:
        state = "gone"
    return {
        "hours": build.ssh_hours,
        "state": state,
        "command": ssh_command(machine) if kept else None,
        "kept_until": machine.kept_until if kept else None,
    }


def build_ssh_release(*, user, build: Build) -> Machine:
    """Destroy the machine kept for a build's SSH access now, before it expires."""
    if not can_use_ssh_access(user, build):
        raise PermissionDenied(
            f"Only the submitter of build {build.pk} may destroy its machine for SSH access."
        )
    machine = build_debug_machine(build)
    if machine is None or machine.state != MachineState.KEPT:
        raise NotFound(f"Build {build.pk} has no machine kept for SSH access.")
    if not debug_machine_release(machine):
        raise Conflict(f"The machine of build {build.pk} is being destroyed already.")
    return machine


def ssh_machine_release_with(build: Build) -> None:
    """A deleted build's kept machine is destroyed with it, not left until it expires."""
    machine = build_debug_machine(build) if build.with_ssh_access else None
    if machine is not None and machine.state == MachineState.KEPT:
        debug_machine_release(machine)
