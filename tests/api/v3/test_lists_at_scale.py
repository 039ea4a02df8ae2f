"""Lists of many rows cost a fixed number of queries, and the unlimited build list streams.

The rows come from `manage.py seed_scale` with small sizes: a project of 500 builds with
four chroots each (2,500 tasks) and 200 packages, each with a newest and a newest
succeeded build.
"""

import io
import json

import pytest
from django.core.management import call_command

from apps.builds.models import Build, BuildTask, State
from apps.packages.models import Package
from tests.factories import BuildFactory

pytestmark = pytest.mark.django_db
BUILDS = 500
PACKAGES = 200
PROJECT = {"ownername": "bigowner", "projectname": "bigproject"}


@pytest.fixture
def big_project():
    call_command(
        "seed_scale",
        users=4,
        groups=1,
        projects=3,
        packages=PACKAGES + 10,
        builds=BUILDS + 20,
        big_project_builds=BUILDS,
        big_project_packages=PACKAGES,
        big_owner_projects=2,
        stdout=io.StringIO(),
    )
    assert BuildTask.objects.filter(build__project__name="bigproject").count() == BUILDS * 5


def test_build_list_pages_cost_four_queries(big_project, copr_client, django_assert_num_queries):
    # The project, the ids of a page of builds, their rows, and the chroot names of their tasks.
    for limit in (10, 100, 1000):
        with django_assert_num_queries(4):
            items = copr_client().get("build/list", {**PROJECT, "limit": limit}).json()["items"]
        assert len(items) == min(limit, BUILDS)
        assert all(len(item["chroots"]) == 4 for item in items)


def test_unlimited_build_list_is_streamed_in_the_paged_shape(
    big_project, copr_client, django_assert_num_queries
):
    client = copr_client()
    with django_assert_num_queries(3):
        response = client.client.get("/api_3/build/list", PROJECT)
        assert response.streaming
        streamed = json.loads(b"".join(response.streaming_content))
    assert streamed["meta"] == {"limit": None, "offset": 0, "order": "id", "order_type": "ASC"}
    paged = client.get("build/list", {**PROJECT, "limit": BUILDS}).json()["items"]
    assert streamed["items"] == paged
    assert [item["id"] for item in paged] == sorted(
        Build.objects.filter(project__name="bigproject").values_list("pk", flat=True)
    )
    newest = paged[-1]
    # The list computes times in the database; one build's page reads them from the model.
    assert newest == client.get(f"build/{newest['id']}").json()
    assert newest["ownername"] == "bigowner" and newest["projectname"] == "bigproject"
    assert newest["chroots"] == sorted(newest["chroots"])
    assert newest["source_package"]["url"].endswith(".src.rpm")


def test_package_list_with_latest_builds_costs_four_queries(
    big_project, copr_client, django_assert_num_queries
):
    flags = {"with_latest_build": "True", "with_latest_succeeded_build": "True"}
    # The project, the packages with their two build ids, those builds, their chroots.
    with django_assert_num_queries(4):
        items = copr_client().get("package/list", {**PROJECT, **flags}).json()["items"]
    assert len(items) == PACKAGES
    for item in items[:20]:
        builds = Build.objects.filter(package_id=item["id"]).order_by("-id")
        latest = builds.first()
        succeeded = builds.filter(state=State.SUCCEEDED).first()
        shown = item["builds"]["latest"]
        # The seed draws each build's package at random: a few packages have no build.
        assert (shown and shown["id"]) == (latest and latest.pk)
        assert shown is None or len(shown["chroots"]) == 4
        shown = item["builds"]["latest_succeeded"]
        assert (shown and shown["id"]) == (succeeded and succeeded.pk)


def test_package_list_without_flags_reads_no_build(
    big_project, copr_client, django_assert_num_queries
):
    with django_assert_num_queries(3):  # the project, the ids of the page, the packages
        items = copr_client().get("package/list", {**PROJECT, "limit": 1000}).json()["items"]
    assert len(items) == PACKAGES
    assert all(item["builds"] == {"latest": None, "latest_succeeded": None} for item in items)
    assert Package.objects.filter(project__name="bigproject").count() == PACKAGES


def test_project_list_of_a_big_owner(big_project, copr_client, django_assert_num_queries):
    with django_assert_num_queries(2):  # the projects, their chroots
        items = copr_client().get("project/list", {"ownername": "bigowner"}).json()["items"]
    assert len(items) == 2
    assert len(items[0]["chroot_repos"]) == 4


def test_v1_build_lists_cost_a_fixed_number_of_queries(
    big_project, api_client, django_assert_max_num_queries
):
    # The count (on PostgreSQL first the table's estimate, exact below 10,000 rows), the
    # page's ids and the page.
    with django_assert_max_num_queries(4):
        page = api_client.get("/api/v1/builds", {"limit": 100}).json()
    assert len(page["results"]) == 100 and page["count"] == BUILDS + 20
    with django_assert_max_num_queries(4):  # the project, the count, the page's ids, the page
        page = api_client.get("/api/v1/projects/bigowner/bigproject/builds").json()
    assert page["count"] == BUILDS


def test_a_build_without_rpm_tasks_lists_its_requested_chroots(big_project, copr_client):
    """Before its SRPM is known a build has no RPM task: the chroots chosen at submit."""
    project = Build.objects.filter(project__name="bigproject").first().project
    waiting = BuildFactory(
        project=project,
        state=State.PENDING,
        requested_chroots=["fedora-43-x86_64", "epel-9-x86_64"],
    )
    client = copr_client()
    listed = client.get("build/list", {**PROJECT, "limit": 1, "order_type": "DESC"}).json()
    assert listed["items"][0]["id"] == waiting.pk
    assert listed["items"][0]["chroots"] == ["fedora-43-x86_64", "epel-9-x86_64"]
    assert client.get(f"build/{waiting.pk}").json()["chroots"] == listed["items"][0]["chroots"]
