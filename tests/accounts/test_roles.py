"""The staff role (Copr's admins) against superusers: who gets it, and what it cannot reach."""

import io

import pytest
from django.core.management import call_command
from django.urls import reverse

from apps.accounts.models import OidcIdentity, User
from apps.accounts.roles import STAFF_GROUP_NAME
from apps.projects.models import Chroot
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

# What Copr's admins do in the console, and what runs commands on builders.
COPR_ADMIN_PERMISSIONS = (
    "accounts.change_user",
    "accounts.change_group",
    "projects.add_chroot",
    "projects.change_chroot",
    "projects.change_project",
    "projects.delete_project",
    "packages.change_package",
    "builds.view_build",
    "fleet.view_builderpool",
    "fleet.change_builder",
    "fleet.view_poolchange",
    "axes.delete_accessattempt",
)
ROOT_ON_BUILDERS = (
    "fleet.add_builderpool",
    "fleet.change_builderpool",
    "fleet.delete_builderpool",
    "fleet.add_builder",
    "fleet.change_machine",
)


def create_user(*args) -> User:
    call_command("create_user", *args, stdout=io.StringIO(), stderr=io.StringIO())
    return User.objects.get(username=args[0])


def test_create_user_staff_makes_a_copr_admin_not_a_superuser():
    user = create_user("olga", "--staff")

    assert user.is_staff and not user.is_superuser
    assert list(user.groups.values_list("name", flat=True)) == [STAFF_GROUP_NAME]
    for permission in COPR_ADMIN_PERMISSIONS:
        assert user.has_perm(permission), permission
    for permission in ROOT_ON_BUILDERS:
        assert not user.has_perm(permission), permission


def test_create_user_superuser_makes_a_superuser():
    user = create_user("root", "--superuser")

    assert user.is_staff and user.is_superuser
    assert all(user.has_perm(permission) for permission in ROOT_ON_BUILDERS)


def test_ensure_admin_makes_a_superuser_when_there_is_only_staff():
    create_user("olga", "--staff")

    call_command("ensure_admin", stdout=io.StringIO())

    assert User.objects.get(username="admin").is_superuser


def user_form(user: User, **changes) -> dict:
    values = {
        "username": user.username,
        "email": user.email,
        "is_active": "on",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
    }
    return {**values, **changes}


def test_staff_cannot_make_themselves_or_others_superuser(client, staff_user):
    plain = UserFactory(username="plain")
    client.force_login(staff_user)

    for user in (staff_user, plain):
        url = reverse("admin:accounts_user_change", args=[user.pk])
        response = client.post(url, user_form(user, is_superuser="on", is_staff="on"))
        assert response.status_code == 302  # saved, without the role fields

    assert not User.objects.filter(is_superuser=True).exists()
    assert not User.objects.get(username="plain").is_staff


def test_staff_edit_an_ordinary_user(client, staff_user):
    plain = UserFactory(username="plain")
    client.force_login(staff_user)
    url = reverse("admin:accounts_user_change", args=[plain.pk])

    client.post(url, user_form(plain, email="new@example.org", proven="on"))

    plain.refresh_from_db()
    assert (plain.email, plain.proven) == ("new@example.org", True)


def test_staff_cannot_take_over_a_superuser_account(client, staff_user, superuser):
    client.force_login(staff_user)
    password_url = reverse("admin:auth_user_password_change", args=[superuser.pk])
    change_url = reverse("admin:accounts_user_change", args=[superuser.pk])

    new_password = {"password1": "taken-over-42", "password2": "taken-over-42"}
    assert client.post(password_url, new_password).status_code == 403
    assert client.post(change_url, user_form(superuser, is_active="")).status_code == 403
    client.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "disable_users", "_selected_action": [superuser.pk]},
    )

    superuser.refresh_from_db()
    assert superuser.is_active and not superuser.check_password("taken-over-42")


def test_staff_cannot_link_a_login_to_a_superuser_account(client, staff_user, superuser):
    plain = UserFactory(username="plain")
    client.force_login(staff_user)
    url = reverse("admin:accounts_oidcidentity_add")
    identity = {"issuer": "https://sso.example", "subject": "staff-own-sub"}

    refused = client.post(url, {**identity, "user": superuser.pk})
    linked = client.post(url, {**identity, "user": plain.pk})

    assert refused.status_code == 200 and "user" in refused.context["adminform"].form.errors
    assert linked.status_code == 302
    assert list(OidcIdentity.objects.values_list("user__username", flat=True)) == ["plain"]


def test_staff_cannot_change_a_chroots_mock_config(client, staff_user, superuser):
    chroot = Chroot.objects.get(name="fedora-43-x86_64")
    before = chroot.mock_config
    form = {
        "name": chroot.name,
        "os_release": chroot.os_release,
        "os_version": chroot.os_version,
        "arch": chroot.arch,
        "is_active": "on",
        "macros": "{}",
        "mock_config": "/tmp/evil.cfg",
        "comment": "staff were here",
    }
    url = reverse("admin:projects_chroot_change", args=[chroot.pk])

    client.force_login(staff_user)
    assert client.post(url, form).status_code == 302
    chroot.refresh_from_db()
    assert (chroot.mock_config, chroot.comment) == (before, "staff were here")

    client.force_login(superuser)
    assert client.post(url, {**form, "mock_config": "fedora-43-x86_64-custom"}).status_code == 302
    chroot.refresh_from_db()
    assert chroot.mock_config == "fedora-43-x86_64-custom"
