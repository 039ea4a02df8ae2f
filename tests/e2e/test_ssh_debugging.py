"""SSH access for debugging, end to end: a build resubmitted with the user's key runs on a
machine of a command pool (a network namespace with its own sshd, tests/builders/
netns_machine.py) or a VM of a vm pool, the real `ssh` client logs in there with that key
after the build and lands in the build's sandbox, another key is refused, and the machine
goes on request and at expiry.
"""

import socket
import subprocess
import tempfile
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.builds.models import Build, State
from apps.builds.services import BuildOptions, build_submit
from apps.builds.ssh_access import build_ssh_release, ssh_access_state
from apps.fleet.models import BuilderPool, Machine, MachineState
from builders.sandbox import DEFAULT_BUILD_UID, Workspace
from tests.builders.srpm_factory import make_srpm
from tests.e2e.conftest import finished_build, wait_for
from tests.e2e.test_command_pools import (
    calls,
    machines,  # noqa: F401 - the fixture
    namespaces,
    only_command_pool,
    reconcile_machines_now,
)
from tests.e2e.test_pipeline import auth, submit_upload
from tests.e2e.test_vm_pools import only_vm_pool, vms_left

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def keypair(directory: Path, name: str) -> tuple[Path, str]:
    path = directory / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True
    )
    return path, path.with_suffix(".pub").read_text().strip()


def ssh(key: Path, command_line: str, remote: str = "", *options: str):
    """The user's `ssh`, run as the page says, with their own key and nothing else."""
    return subprocess.run(
        [
            *command_line.split()[:-1], "-i", str(key), "-o", "IdentitiesOnly=yes",
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5", "-F", "/dev/null",
            *options, command_line.split()[-1], *([remote] if remote else []),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def kept_machine(build_id: int) -> Machine:
    def kept():
        build = Build.objects.get(pk=build_id)
        machine = Machine.objects.filter(state=MachineState.KEPT).first()
        return machine if build.state in (State.FAILED, State.SUCCEEDED) and machine else None

    return wait_for(kept, timeout=120, what=f"build {build_id}'s machine to be kept")


@pytest.fixture
def service_port():
    """A service on every address of this machine, as the portal's hosts would be: what a
    debugging user must not reach from the machine."""
    server = socket.create_server(("0.0.0.0", 0))  # noqa: S104 - reachable on purpose
    server.settimeout(0.5)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed: the test is over
            connection.sendall(b"SERVICE-SECRET\n")
            connection.close()

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    stop.set()
    server.close()


@pytest.fixture
def workspaces_dir():
    """The machines' workspaces directory: a kept build leaves its workspace there (a real
    machine takes it with its disk). In the temp dir, which the build uid can pass through,
    and of this test alone: other tests' builds run in the temp dir at the same time."""
    directory = Path(tempfile.mkdtemp(prefix="coprsite-test-workspaces-"))
    directory.chmod(0o711)
    yield directory
    for path in directory.iterdir():
        Workspace(path).cleanup()
    directory.rmdir()


def test_a_build_resubmitted_with_ssh_keeps_its_machine_for_the_users_key_only(
    live_server,
    worker,
    packager,
    tmp_path,
    machines,  # noqa: F811 - the fixture imported above
    settings,
    service_port,
    workspaces_dir,
):
    settings.SSH_DEBUG_MAX_MACHINES = 1
    pool = only_command_pool(machines)
    BuilderPool.objects.filter(pk=pool.pk).update(
        config=pool.config
        | {"work_dir": str(tmp_path / "work"), "workspaces_dir": str(workspaces_dir)}
    )
    user, token, _ = packager
    key, public_key = keypair(tmp_path, "user_key")
    other_key, _ = keypair(tmp_path, "other_key")
    srpm = make_srpm(
        tmp_path, name="broken", build_script="echo DEBUG-ME > marker; exit 1", auto_req_prov=False
    )
    original = finished_build(submit_upload(live_server, token, srpm))
    assert original.state == State.FAILED

    # Resubmitted with SSH access on the web, as Copr's "Resubmit with SSH".
    browser = Client()
    browser.force_login(user)
    page = browser.post(
        reverse("build-resubmit-ssh", args=[original.pk]),
        {"chroots": "fedora-43-x86_64", "ssh_public_keys": public_key, "ssh_hours": "2"},
    )
    assert page.status_code == 302, page.content.decode()[-2000:]
    build = Build.objects.exclude(pk=original.pk).get()
    machine = kept_machine(build.pk)
    assert machine.kept_for == user
    assert timezone.now() + timedelta(minutes=119) < machine.kept_until
    assert machine.kept_until <= timezone.now() + timedelta(hours=2)

    detail = browser.get(reverse("build-detail", args=[build.pk])).content.decode()
    command = f"ssh -p 22 root@{machine.address}"
    assert f"<code>{command}</code>" in detail
    api = requests.get(
        f"{live_server.url}/api/v1/builds/{build.pk}/ssh", auth=auth(token), timeout=30
    )
    assert api.json()["command"] == command and api.json()["state"] == "kept"

    # The user's key lands in the build's sandbox, its workspace at /build, never as root.
    session = ssh(key, command, "id -u; find /build -name marker")
    assert session.returncode == 0, session.stderr
    uid, found = session.stdout.split("\n", 1)
    assert int(uid) == DEFAULT_BUILD_UID and "/marker" in found
    # The service stays out of reach: no network in the sandbox, no forwarding by sshd.
    gateway = machine.address.rsplit(".", 1)[0] + ".1"
    reach = ssh(key, command, f"exec 3<>/dev/tcp/{gateway}/{service_port} && cat <&3")
    assert reach.returncode != 0 and "SERVICE-SECRET" not in reach.stdout
    forward = ssh(key, command, "", "-W", f"{gateway}:{service_port}")
    assert forward.returncode != 0 and "SERVICE-SECRET" not in forward.stdout
    # Another key gets nowhere.
    refused = ssh(other_key, command, "true")
    assert refused.returncode == 255 and "Permission denied" in refused.stderr

    # One machine is this user's limit: a second resubmit with SSH is refused, with why.
    second = requests.post(
        f"{live_server.url}/api/v1/builds/{original.pk}/resubmit",
        json={"chroots": ["fedora-43-x86_64"], "ssh_public_keys": public_key},
        auth=auth(token),
        timeout=30,
    )
    assert second.status_code == 409, second.text
    assert "1 of your 1 machines with SSH access" in second.json()["error"]

    # Destroyed on request: the machine (its namespace) is gone, and the login with it.
    destroyed = browser.post(reverse("build-ssh-destroy", args=[build.pk]))
    assert destroyed.status_code == 302
    wait_for(lambda: not Machine.objects.exists(), timeout=60, what="the machine's delete")
    assert machine.name in calls(machines[1])["delete"]
    assert not set(calls(machines[1])["netns"]) & namespaces()
    assert ssh(key, command, "true").returncode == 255

    # Now there is room again: a machine that expires is deleted by reconcile.
    third = requests.post(
        f"{live_server.url}/api/v1/builds/{original.pk}/resubmit",
        json={"chroots": ["fedora-43-x86_64"], "ssh_public_keys": public_key, "ssh_hours": 1},
        auth=auth(token),
        timeout=30,
    )
    assert third.status_code == 201, third.text
    expiring = kept_machine(third.json()["id"])
    assert ssh(key, f"ssh -p 22 root@{expiring.address}", "true").returncode == 0
    assert reconcile_machines_now() == []  # not yet
    Machine.objects.filter(pk=expiring.pk).update(kept_until=timezone.now())
    assert reconcile_machines_now() == [expiring.pk]
    assert not Machine.objects.exists()
    assert ssh(key, f"ssh -p 22 root@{expiring.address}", "true").returncode == 255


@pytest.mark.slow
def test_a_vm_kept_for_ssh_debugging_lets_the_users_key_into_the_builds_sandbox(
    live_server, worker, packager, tmp_path, vm_image
):
    state_dir = tmp_path / "vms"
    only_vm_pool(vm_image, state_dir)
    user, _, project = packager
    key, public_key = keypair(tmp_path, "user_key")
    other_key, _ = keypair(tmp_path, "other_key")
    srpm = make_srpm(
        tmp_path, name="broken", build_script="echo DEBUG-ME > marker; exit 1", auto_req_prov=False
    )
    build = build_submit(
        user=user,
        project=project,
        source_type="upload",
        source_json={},
        upload=SimpleUploadedFile(srpm.name, srpm.read_bytes(), "application/x-rpm"),
        options=BuildOptions(chroots=["fedora-43-x86_64"], ssh_public_keys=public_key),
    )

    machine = kept_machine(build.pk)
    command = ssh_access_state(build)["command"]
    assert command == f"ssh -p {machine.login['port']} root@127.0.0.1"
    session = ssh(key, command, "id -u; cat $(find /build -name marker)")
    assert session.returncode == 0, session.stderr
    assert session.stdout.split() == [str(DEFAULT_BUILD_UID), "DEBUG-ME"]
    assert ssh(other_key, command, "true").returncode == 255

    build_ssh_release(user=user, build=build)
    wait_for(lambda: not Machine.objects.exists(), timeout=60, what="the VM's delete")
    assert vms_left(state_dir) == []
    assert ssh(key, command, "true").returncode == 255
