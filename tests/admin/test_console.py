"""The operator console: every model registered, changelists for staff only, actions work."""

import re

import pytest
from django.apps import apps
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import ApiToken
from apps.accounts.services import api_token_regenerate
from apps.builds.models import Build, State
from apps.fleet.models import Builder, BuilderPool, BuilderState
from apps.fleet.services import local_pool_ensure
from apps.projects.models import Chroot
from builders.arches import host_arch
from tests.factories import BuildTaskFactory, UserFactory
from tests.web.test_status_builders import NEW_COMMAND, busy_builders, fleet  # noqa: F401 (fixture)

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


# --- one section per app; builds read-only, changed through actions --------------------------


def test_index_has_one_section_per_app(client, staff_user):
    client.force_login(staff_user)
    page = client.get(reverse("admin:index")).content.decode()
    sections = re.findall(r'<caption>\s*<a href="[^"]*" class="section"[^>]*>([^<]+)</a>', page)
    assert len(sections) == len(set(sections)), sections
    assert sections.count("Accounts") == 1 and "Builds" in sections


def change_url(obj) -> str:
    meta = obj._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])


def test_build_state_and_source_are_read_only_with_links_to_logs(client, staff_user, settings):
    settings.PUBLIC_URL = "http://copr.example.org"
    task = BuildTaskFactory(started_on=timezone.now(), result_dir="fedora-43-x86_64/00000042-hello")
    build = task.build
    client.force_login(staff_user)
    page = client.get(change_url(build)).content.decode()
    assert 'name="state"' not in page and 'name="source_json"' not in page
    results = f"http://copr.example.org/results/{build.project.ownername}/{build.project.name}/"
    results += "fedora-43-x86_64/00000042-hello/"
    assert f'<a href="{results}builder-live.log.gz">builder-live.log.gz</a>' in page
    assert f'<a href="{results}">results</a>' in page
    assert f'href="{reverse("build-detail", args=[build.pk])}"' in page
    # A post with a forged state changes nothing.
    client.post(change_url(build), {"state": "failed"})
    build.refresh_from_db()
    assert build.state == State.SUCCEEDED
    task_page = client.get(change_url(task)).content.decode()
    assert 'name="state"' not in task_page and "builder-live.log" in task_page
    assert client.get(reverse("admin:builds_build_add")).status_code == 403


def build_action(client, action: str, *builds):
    url = changelist_url(Build)
    selected = [build.pk for build in builds]
    return client.post(url, {"action": action, "_selected_action": selected}, follow=True)


def test_staff_cancels_a_build_through_the_service(client, staff_user):
    task = BuildTaskFactory(state=State.PENDING, build__state=State.PENDING)
    client.force_login(staff_user)
    response = build_action(client, "cancel_builds", task.build)
    assert "Canceled 1 build(s)." in response.content.decode()
    task.refresh_from_db()
    assert task.state == State.CANCELED and task.build.state == State.CANCELED


def test_staff_requeues_the_task_of_a_lost_builder(client, staff_user):
    builder = local_pool_ensure()
    task = BuildTaskFactory(state=State.RUNNING, build__state=State.RUNNING, builder=builder)
    client.force_login(staff_user)
    response = build_action(client, "requeue_builds", task.build)
    assert "Requeued 1 task(s)." in response.content.decode()
    task.refresh_from_db()
    assert (task.state, task.builder_id, task.attempt) == (State.PENDING, None, 1)
    assert task.state_reason == "queued again by operator"


def test_staff_deletes_finished_builds_and_learns_why_not_running_ones(client, staff_user):
    finished = BuildTaskFactory().build
    running = BuildTaskFactory(state=State.RUNNING, build__state=State.RUNNING).build
    client.force_login(staff_user)
    page = build_action(client, "delete_builds", finished, running).content.decode()
    assert "Deleted 1 build(s)." in page
    assert f"Build {running.pk} is still running; cancel it first." in page
    assert list(Build.objects.values_list("pk", flat=True)) == [running.pk]


def test_builders_show_their_current_tasks_and_when_they_were_last_seen(client, staff_user):
    builder = local_pool_ensure()
    Builder.objects.filter(pk=builder.pk).update(slots=2)
    task = BuildTaskFactory(state=State.RUNNING, build__state=State.RUNNING, builder=builder)
    BuildTaskFactory(builder=builder)  # finished: no longer on the builder
    client.force_login(staff_user)
    page = client.get(changelist_url(Builder)).content.decode()
    assert "1 of 2 busy" in page
    assert f'<a href="{change_url(task)}">{task.task_id}</a>' in page
    assert re.search(r"<time datetime=\"[^\"]+\">\d+ s ago</time>", page)
    assert "1 of 2 busy" in client.get(change_url(builder)).content.decode()


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


@pytest.mark.usefixtures("fleet")
def test_pools_show_their_kind_arches_builders_and_slots_in_use(client, staff_user):
    client.force_login(staff_user)

    page = client.get(changelist_url(BuilderPool)).content.decode()

    rows = {name: row for name, row in pool_rows(page)}
    assert set(rows) == {"local", "remote", "vms", "cloud"}
    assert '<td class="field-kind">static hosts over SSH</td>' in rows["remote"]
    assert '<td class="field-arch_list">x86_64</td>' in rows["remote"]
    assert '<td class="field-activity">1 of 2</td>' in rows["remote"]
    assert '<td class="field-builder_states">1 down</td>' in rows["cloud"]
    assert '<td class="field-activity">0 of 3</td>' in rows["vms"]


def pool_rows(page: str):
    for row in re.findall(r"<tr>.*?</tr>", page, flags=re.S):
        name = re.search(r'<th class="field-name"><a href="[^"]+">([^<]+)</a>', row)
        if name:
            yield name.group(1), row


@pytest.mark.usefixtures("fleet")
def test_builders_show_their_pool_kind(client, staff_user):
    client.force_login(staff_user)

    page = client.get(changelist_url(Builder)).content.decode()

    for kind in ("local", "ssh", "vm", "command"):
        assert f'<td class="field-kind">{kind}</td>' in page
    assert "runner-7" in page and f"{NEW_COMMAND} exited with 1" in page


@pytest.mark.usefixtures("fleet")
@pytest.mark.parametrize("model", [Builder, BuilderPool], ids=lambda model: model.__name__)
def test_fleet_changelists_cost_the_same_queries_for_few_builders_or_many(
    client, staff_user, model
):
    client.force_login(staff_user)
    few = changelist_queries(client, model)
    busy_builders(30)

    assert changelist_queries(client, model) == few


def changelist_queries(client, model) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(changelist_url(model)).status_code == 200
    return len(queries)


def test_a_pool_config_its_kind_cannot_use_is_refused_and_nothing_is_saved(client, superuser):
    client.force_login(superuser)
    form = {
        "name": "cloud",
        "kind": "command",
        "arches": '["x86_64"]',
        "arch": host_arch(),
        "enabled": "on",
        "max_builders": "2",
        "min_ready": "0",  # the form's initial values, as the browser sends them
        "reuse_builds": "1",
        "config": '{"delete": "true"}',
        "builders-TOTAL_FORMS": "0",
        "builders-INITIAL_FORMS": "0",
    }

    response = client.post(reverse("admin:fleet_builderpool_add"), form)

    assert response.status_code == 200
    assert "Pool cloud: config needs &#x27;new&#x27;" in response.content.decode()
    assert not BuilderPool.objects.filter(name="cloud").exists()

    form["config"] = '{"new": "cloud-new", "delete": "cloud-delete"}'
    response = client.post(reverse("admin:fleet_builderpool_add"), form)

    assert response.status_code == 302
    builder = BuilderPool.objects.get(name="cloud").builders.get()
    assert (builder.name, builder.slots) == ("cloud-machines", 2)
