"""The operator console: every model registered, changelists for staff only, actions work."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from apps.accounts.models import ApiToken
from apps.accounts.services import api_token_regenerate
from apps.fleet.models import Builder, BuilderPool, BuilderState
from apps.projects.models import Chroot
from tests.factories import BuildTaskFactory, UserFactory

pytestmark = pytest.mark.django_db
OUR_APPS = ("accounts", "projects", "packages", "builds", "repos", "fleet")


def our_models():
    return [model for name in OUR_APPS for model in apps.get_app_config(name).get_models()]


def changelist_url(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def test_every_model_is_in_the_console():
    missing = [model.__name__ for model in our_models() if not admin.site.is_registered(model)]
    assert missing == []


@pytest.mark.parametrize("model", our_models(), ids=lambda model: model.__name__)
def test_changelist_answers_staff(client, staff_user, model):
    BuildTaskFactory()  # some rows so list columns and select_related are exercised
    client.force_login(staff_user)
    assert client.get(changelist_url(model)).status_code == 200


@pytest.mark.parametrize("model", our_models(), ids=lambda model: model.__name__)
@pytest.mark.parametrize("who", ["anonymous", "user"])
def test_changelist_redirects_others_to_login(client, model, who):
    if who == "user":
        client.force_login(UserFactory(username="plain"))
    response = client.get(changelist_url(model))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_staff_deactivates_a_chroot(client, staff_user):
    target = Chroot.objects.get(name="fedora-43-aarch64")
    client.force_login(staff_user)
    response = client.post(
        changelist_url(Chroot),
        {"action": "deactivate", "_selected_action": [target.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "Deactivated 1 chroot(s)." in response.content.decode()
    target.refresh_from_db()
    assert not target.is_active
    assert Chroot.objects.get(name="fedora-43-x86_64").is_active


def test_staff_marks_chroot_end_of_life(client, staff_user):
    target = Chroot.objects.get(name="epel-8-x86_64")
    client.force_login(staff_user)
    client.post(
        changelist_url(Chroot), {"action": "mark_end_of_life", "_selected_action": [target.pk]}
    )
    target.refresh_from_db()
    assert target.end_of_life and not target.is_active


def test_staff_disables_a_user(client, staff_user):
    user = UserFactory(username="spammer")
    api_token_regenerate(user=user)
    client.force_login(staff_user)
    from apps.accounts.models import User

    client.post(changelist_url(User), {"action": "disable_users", "_selected_action": [user.pk]})
    user.refresh_from_db()
    assert not user.is_active
    assert not ApiToken.objects.filter(user=user).exists()


def test_staff_drains_a_builder(client, staff_user):
    pool = BuilderPool.objects.create(name="local", arches=["x86_64"])
    builder = Builder.objects.create(pool=pool, name="local-1", arches=["x86_64"])
    client.force_login(staff_user)
    client.post(changelist_url(Builder), {"action": "drain", "_selected_action": [builder.pk]})
    builder.refresh_from_db()
    assert builder.state == BuilderState.DRAINING


@pytest.mark.parametrize(
    ("model", "data", "field"),
    [
        ("accounts_group", {"name": "..", "external_name": "dots"}, "name"),
        ("accounts_group", {"name": "группа", "external_name": "cyr"}, "name"),
        (
            "projects_chroot",
            {"name": "../x", "os_release": "x", "os_version": "1", "arch": "x86_64",
             "macros": "{}"},
            "name",
        ),
    ],
)  # fmt: skip
def test_the_console_refuses_names_the_apis_refuse(client, staff_user, model, data, field):
    client.force_login(staff_user)
    response = client.post(reverse(f"admin:{model}_add"), data)
    assert response.status_code == 200  # the form again, with the field's error
    assert field in response.context["adminform"].form.errors
    assert not apps.get_model(*model.split("_", 1)).objects.filter(name=data["name"]).exists()
