"""SSH access for debugging (apps/builds/ssh_access.py): what a resubmit with SSH checks, who
sees the ssh command and who may destroy the machine, by role; the scheduler's part."""

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.accounts.services import api_token_regenerate
from apps.builds.models import Build, BuildTask, State, TaskAttempt
from apps.builds.scheduler import schedule_pending_tasks
from apps.builds.services import build_delete
from apps.core.models import OutboxMessage
from apps.fleet.machines import machines_reconcile
from apps.fleet.models import Builder, BuilderPool, Machine, MachineState, PoolKind
from apps.fleet.services import local_pool_ensure, machine_pool_sync
from apps.projects.models import PermissionLevel
from tests.api.v1.conftest import basic_auth
from tests.factories import (
    BuildFactory,
    BuildTaskFactory,
    PermissionFactory,
    ProjectFactory,
    UserFactory,
    chroot,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def public_key(tmp_path: Path) -> str:
    path = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


@pytest.fixture
def command_pool() -> BuilderPool:
    pool = BuilderPool.objects.create(
        name="cloud",
        kind=PoolKind.COMMAND,
        arches=["x86_64"],
        max_builders=2,
        config={"new": "true", "delete": "true", "user": "mockbuilder", "port": 2222},
    )
    machine_pool_sync(pool=pool)
    return pool


@pytest.fixture
def original():
    """A finished build of alice's, and the people around it."""
    owner = UserFactory(username="alice")
    project = ProjectFactory(owner_user=owner, name="tools")
    # An SCM build: resubmitted without anything to fetch now.
    return BuildFactory(
        project=project,
        submitter=owner,
        state=State.FAILED,
        source_type="scm",
        source_json={
            "type": "git",
            "clone_url": "https://example.org/hello.git",
            "committish": "main",
            "subdirectory": "",
            "spec": "hello.spec",
            "srpm_build_method": "rpkg",
        },
    )


def token_client(api_client, user):
    token = api_token_regenerate(user=user)
    api_client.credentials(HTTP_AUTHORIZATION=basic_auth(token.login, token.token))
    return api_client


def resubmit(client, build, **data):
    return client.post(
        f"/api/v1/builds/{build.pk}/resubmit",
        {"chroots": ["fedora-43-x86_64"], **data},
        format="json",
    )


def kept_machine(build: Build, pool: BuilderPool, **fields) -> Machine:
    """The machine a build with SSH access ran on, kept for its submitter."""
    task = BuildTaskFactory(build=build, state=State.FAILED)
    TaskAttempt.objects.create(task=task, number=1, builder_name="m", machine_name="cloud-m1")
    values = {
        "state": MachineState.KEPT,
        "address": "198.51.100.7",
        "kept_for": build.submitter,
        "kept_until": timezone.now() + timedelta(hours=1),
    }
    return Machine.objects.create(pool=pool, name="cloud-m1", **(values | fields))


# --- resubmit with SSH --------------------------------------------------------------------


def test_the_owner_resubmits_with_ssh_and_gets_one_machine_kept_for_the_hours_asked(
    api_client, original, command_pool, public_key
):
    answer = resubmit(
        token_client(api_client, original.submitter),
        original,
        ssh_public_keys=f"{public_key}\n",
        ssh_hours=3,
    )

    assert answer.status_code == 201, answer.content
    build = Build.objects.get(pk=answer.json()["id"])
    # Stored as "type base64": the comment, and anything else, is not kept.
    assert build.ssh_public_keys == " ".join(public_key.split()[:2])
    assert build.ssh_hours == 3


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"ssh_public_keys": "hello there"}, "ssh_public_keys", "is not an SSH public key"),
        ({"ssh_public_keys": "ssh-ed25519 AAAAnotbase64"}, "ssh_public_keys", "not a valid"),
        (
            {"ssh_public_keys": 'command="sh" ssh-ed25519 AAAA'},
            "ssh_public_keys",
            "is not an SSH public key",
        ),
        ({"ssh_hours": 25}, "ssh_hours", "between 1 and 24 hours"),
        ({"chroots": ["fedora-43-x86_64", "fedora-rawhide-x86_64"]}, "chroots", "exactly one"),
    ],
)
def test_a_resubmit_with_bad_ssh_options_is_refused_with_the_reason(
    api_client, original, command_pool, public_key, data, field, message
):
    original.project.project_chroots.create(chroot=chroot("fedora-rawhide-x86_64"))
    data = {"ssh_public_keys": public_key, **data}

    answer = resubmit(token_client(api_client, original.submitter), original, **data)

    assert answer.status_code == 400, answer.content
    assert message in " ".join(answer.json()["fields"][field])
    assert Build.objects.count() == 1


def test_without_a_pool_that_makes_machines_ssh_access_is_refused(api_client, original, public_key):
    local_pool_ensure()

    answer = resubmit(
        token_client(api_client, original.submitter), original, ssh_public_keys=public_key
    )

    assert answer.status_code == 400
    assert "a machine of their own" in answer.json()["error"]


def test_a_user_holds_at_most_the_configured_number_of_machines(
    api_client, original, command_pool, public_key, settings
):
    settings.SSH_DEBUG_MAX_MACHINES = 2
    client = token_client(api_client, original.submitter)
    kept_machine(BuildFactory(project=original.project, ssh_public_keys=public_key), command_pool)
    assert resubmit(client, original, ssh_public_keys=public_key).status_code == 201

    refused = resubmit(client, original, ssh_public_keys=public_key)

    assert refused.status_code == 409
    assert "You already hold 2 of your 2 machines with SSH access" in refused.json()["error"]
    # Without SSH access nothing is counted.
    assert resubmit(client, original).status_code == 201


def test_who_may_resubmit_with_ssh_is_who_may_build_in_the_project(
    api_client, original, command_pool, public_key
):
    assert resubmit(api_client, original, ssh_public_keys=public_key).status_code == 401
    stranger = UserFactory()
    answer = resubmit(token_client(api_client, stranger), original, ssh_public_keys=public_key)
    assert answer.status_code == 403
    builder = UserFactory()
    PermissionFactory(project=original.project, user=builder, builder=PermissionLevel.APPROVED)
    answer = resubmit(token_client(api_client, builder), original, ssh_public_keys=public_key)
    assert answer.status_code == 201
    assert Build.objects.get(pk=answer.json()["id"]).submitter == builder


def test_the_web_form_asks_for_keys_and_hours_of_those_who_may_build(original, command_pool):
    url = reverse("build-resubmit-ssh", args=[original.pk])
    assert Client().get(url).status_code == 302  # to the login page
    stranger = Client()
    stranger.force_login(UserFactory())
    assert stranger.get(url).status_code == 403
    owner = Client()
    owner.force_login(original.submitter)
    form = owner.get(url).content.decode()
    assert 'name="ssh_public_keys"' in form and "At most 24." in form
    detail = owner.get(reverse("build-detail", args=[original.pk])).content.decode()
    assert url in detail


# --- the ssh command and destroying the machine, by role ----------------------------------


@pytest.fixture
def ssh_build(original, command_pool, public_key):
    build = BuildFactory(
        project=original.project,
        submitter=original.submitter,
        ssh_public_keys=public_key,
        ssh_hours=1,
        state=State.FAILED,
    )
    kept_machine(build, command_pool, login={"port": 2222, "user": "mockbuilder"})
    return build


COMMAND = "ssh -p 2222 mockbuilder@198.51.100.7"


def page(user, build) -> str:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client.get(reverse("build-detail", args=[build.pk])).content.decode()


def test_only_the_submitter_and_staff_see_the_ssh_command(api_client, ssh_build):
    staff = UserFactory(is_staff=True)
    project_admin = UserFactory()
    PermissionFactory(
        project=ssh_build.project,
        user=project_admin,
        builder=PermissionLevel.APPROVED,
        admin=PermissionLevel.APPROVED,
    )
    for user in (ssh_build.submitter, staff):
        assert COMMAND in page(user, ssh_build)
        answer = token_client(api_client, user).get(f"/api/v1/builds/{ssh_build.pk}/ssh")
        assert answer.json()["command"] == COMMAND and answer.json()["state"] == "kept"
    for user in (None, UserFactory(), project_admin):
        assert COMMAND not in page(user, ssh_build)
        assert "Destroy the machine" not in page(user, ssh_build)
    api_client.credentials()
    assert api_client.get(f"/api/v1/builds/{ssh_build.pk}/ssh").status_code == 401
    answer = token_client(api_client, project_admin).get(f"/api/v1/builds/{ssh_build.pk}/ssh")
    assert answer.status_code == 403


def destroy(user, build):
    client = Client()
    if user is not None:
        client.force_login(user)
    return client.post(reverse("build-ssh-destroy", args=[build.pk]))


def deletes_sent() -> int:
    return OutboxMessage.objects.filter(actor_name="delete_machine").count()


def test_anonymous_and_other_users_cannot_destroy_the_machine(ssh_build):
    assert destroy(None, ssh_build).status_code == 302  # to the login page
    assert destroy(UserFactory(), ssh_build).status_code == 403
    assert Machine.objects.get().state == MachineState.KEPT and deletes_sent() == 0


@pytest.mark.parametrize("who", ["submitter", "staff"])
def test_the_submitter_or_staff_destroy_the_machine_now(ssh_build, who):
    user = ssh_build.submitter if who == "submitter" else UserFactory(is_staff=True)

    answer = destroy(user, ssh_build)

    assert answer.status_code == 302
    assert Machine.objects.get().state == MachineState.DELETING and deletes_sent() == 1
    assert "the machine is gone" in page(user, ssh_build)
    assert destroy(user, ssh_build).status_code == 404  # nothing left to destroy


def test_the_api_destroys_the_machine(api_client, ssh_build):
    client = token_client(api_client, UserFactory())
    assert client.delete(f"/api/v1/builds/{ssh_build.pk}/ssh").status_code == 403
    client = token_client(api_client, ssh_build.submitter)
    assert client.delete(f"/api/v1/builds/{ssh_build.pk}/ssh").status_code == 204
    assert Machine.objects.get().state == MachineState.DELETING and deletes_sent() == 1


def test_deleting_the_build_destroys_its_kept_machine(ssh_build):
    build_delete(user=ssh_build.submitter, build=ssh_build)

    assert Machine.objects.get().state == MachineState.DELETING and deletes_sent() == 1


def test_reconcile_claims_a_kept_machine_only_once_it_expired(ssh_build):
    machine = Machine.objects.get()
    assert machines_reconcile(live=[]) == []
    Machine.objects.filter(pk=machine.pk).update(kept_until=timezone.now() - timedelta(seconds=1))

    assert machines_reconcile(live=[]) == [machine.pk]
    assert Machine.objects.get().state == MachineState.DELETING


# --- scheduling ---------------------------------------------------------------------------


def test_a_task_with_ssh_access_waits_for_a_pool_that_makes_machines(
    original, command_pool, public_key
):
    local = local_pool_ensure()
    BuilderPool.objects.filter(pk=command_pool.pk).update(enabled=False)
    build = BuildFactory(project=original.project, ssh_public_keys=public_key, state=State.PENDING)
    task = BuildTaskFactory(build=build, state=State.PENDING, owner_key="alice")

    assert schedule_pending_tasks() == []
    BuilderPool.objects.filter(pk=command_pool.pk).update(enabled=True)
    assert schedule_pending_tasks() == [task.pk]
    task.refresh_from_db()
    assert task.builder == Builder.objects.get(pool=command_pool) != local
    assert BuildTask.objects.get(pk=task.pk).state == State.STARTING
