"""Tests for the build task endpoints of apps/api/v1: shape, order, result and log URLs."""

import datetime

import pytest

from apps.builds.models import State
from tests.api.v1.conftest import PUBLIC_URL
from tests.factories import BuildFactory, BuildTaskFactory, chroot

pytestmark = pytest.mark.django_db

MOMENT = datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
PACKAGE = {"name": "hello", "epoch": None, "version": "1.0", "release": "1.fc43", "arch": "x86_64"}


@pytest.fixture
def build(hello_project):
    """A build of a pull-request directory: a source task and two chroot tasks."""
    build = BuildFactory(project=hello_project, project_dirname="hello:pr:12")
    BuildTaskFactory(
        build=build,
        chroot=chroot("fedora-44-x86_64"),
        state=State.SKIPPED,
        state_reason="skipped because of ExclusiveArch: aarch64",
        result_dir=f"fedora-44-x86_64/{build.pk:08d}-hello",
        queued_on=MOMENT,
        ended_on=MOMENT,
    )
    BuildTaskFactory(
        build=build,
        chroot=chroot("fedora-43-x86_64"),
        state=State.SUCCEEDED,
        result_dir=f"fedora-43-x86_64/{build.pk:08d}-hello",
        queued_on=MOMENT,
        started_on=MOMENT + datetime.timedelta(seconds=5),
        ended_on=MOMENT + datetime.timedelta(seconds=65),
        built_packages=[PACKAGE, {**PACKAGE, "arch": "src"}],
    )
    BuildTaskFactory(
        build=build,
        chroot=None,
        state=State.SUCCEEDED,
        result_dir=f"srpm-builds/{build.pk:08d}",
        queued_on=MOMENT,
    )
    return build


def test_tasks_of_a_build_source_first(client_for, build):
    response = client_for().get(f"/api/v1/builds/{build.pk}/tasks")

    assert response.status_code == 200
    tasks = response.json()
    assert [task["chroot"] for task in tasks] == [None, "fedora-43-x86_64", "fedora-44-x86_64"]
    assert [task["kind"] for task in tasks] == ["source", "rpm", "rpm"]
    results = f"{PUBLIC_URL}/results/alice/hello:pr:12"
    assert tasks[0]["result_url"] == f"{results}/srpm-builds/{build.pk:08d}/"
    assert tasks[2]["state"] == "skipped"
    assert tasks[2]["state_reason"] == "skipped because of ExclusiveArch: aarch64"


def test_task_shape(client_for, build):
    task = build.tasks.get(chroot__name="fedora-43-x86_64")

    response = client_for().get(f"/api/v1/tasks/{task.pk}")

    assert response.status_code == 200
    result_url = f"{PUBLIC_URL}/results/alice/hello:pr:12/fedora-43-x86_64/{build.pk:08d}-hello/"
    assert response.json() == {
        "id": task.pk,
        "build_id": build.pk,
        "chroot": "fedora-43-x86_64",
        "kind": "rpm",
        "state": "succeeded",
        "state_reason": "",
        "submitted_on": 1735787045,
        "started_on": 1735787050,
        "ended_on": 1735787110,
        "result_url": result_url,
        "live_log_url": f"{result_url}builder-live.log",
        "backend_log_url": f"{result_url}backend.log",
        "built_packages": [PACKAGE, {**PACKAGE, "arch": "src"}],
    }


def test_source_task_of_a_fresh_submission(client_for, alice, hello_project, settings):
    settings.SUBMIT_CHECK_URLS = False
    submitted = client_for(alice).post(
        "/api/v1/projects/alice/hello/builds",
        {"source_url": "https://example.org/hello-1.0-1.src.rpm"},
        format="json",
    )
    build_id = submitted.json()["id"]

    tasks = client_for().get(submitted.json()["links"]["tasks"]).json()

    (source,) = tasks
    assert source["build_id"] == build_id and source["chroot"] is None
    assert (source["kind"], source["state"]) == ("source", "pending")
    assert (source["started_on"], source["ended_on"]) == (None, None)
    assert source["live_log_url"] == (
        f"{PUBLIC_URL}/results/alice/hello/srpm-builds/{build_id:08d}/builder-live.log"
    )


def test_task_list_needs_a_fixed_number_of_queries(
    client_for, build, django_assert_max_num_queries
):
    client = client_for()

    with django_assert_max_num_queries(2):  # build, tasks
        response = client.get(f"/api/v1/builds/{build.pk}/tasks")

    assert len(response.json()) == 3


def test_unknown_task_and_build_are_404(client_for, db):
    task = client_for().get("/api/v1/tasks/424242")
    tasks = client_for().get("/api/v1/builds/424242/tasks")

    assert (task.status_code, tasks.status_code) == (404, 404)
    assert task.json() == {"error": "Task 424242 does not exist."}
    assert tasks.json() == {"error": "Build 424242 does not exist."}
