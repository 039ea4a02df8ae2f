"""The pages `bench/scale.py` times, on a small instance shaped like production by
`manage.py seed_scale`: what keeps them fast, checked without timing them.

A page's cost must not grow with its rows (a fixed number of queries, no model instance
per row) nor with its project (no count of the whole project's builds per page).
"""

import io
import re
from collections import Counter
from contextlib import contextmanager

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models.signals import post_init
from django.test.utils import CaptureQueriesContext

from apps.api.v1.views import Pagination
from apps.builds.models import Build, BuildTask, State
from apps.projects.models import Project
from apps.projects.pages import LookaheadPaginator

pytestmark = pytest.mark.django_db
BIG = "/coprs/bigowner/bigproject"
BUILDS = 600
BIG_BUILDS = 300
BIG_PACKAGES = 60


@pytest.fixture
def instance():
    call_command(
        "seed_scale",
        users=6,
        groups=2,
        projects=12,
        packages=BIG_PACKAGES + 30,
        builds=BUILDS,
        big_project_builds=BIG_BUILDS,
        big_project_packages=BIG_PACKAGES,
        big_owner_projects=3,
        queue_percent=40,
        stdout=io.StringIO(),
    )


@contextmanager
def models_built():
    """Counts the model instances made, per model class name, while the block runs."""
    built = Counter()

    def count(sender, **kwargs):
        built[sender.__name__] += 1

    post_init.connect(count, weak=False)
    try:
        yield built
    finally:
        post_init.disconnect(count)


def test_the_seed_is_shaped_like_production(instance):
    big = Build.objects.filter(project__name="bigproject").order_by("pk")
    ids = list(big.values_list("pk", flat=True))
    assert len(ids) == BIG_BUILDS
    # Interleaved with the other projects' builds in time order, not one block of ids.
    assert ids[-1] - ids[0] + 1 > BIG_BUILDS * 1.5
    submitted = list(Build.objects.order_by("pk").values_list("submitted_on", flat=True))
    assert submitted == sorted(submitted)
    states = Counter(Build.objects.values_list("state", flat=True))
    assert {State.FAILED, State.CANCELED, State.SUCCEEDED} <= set(states)
    assert Build.objects.filter(state=State.CANCELED, canceled=False).count() == 0
    # A live queue: the newest builds wait, run or import, some in the background.
    queue = Counter(
        BuildTask.objects.filter(
            state__in=[State.PENDING, State.RUNNING, State.IMPORTING]
        ).values_list("state", flat=True)
    )
    assert all(queue[state] > 10 for state in (State.PENDING, State.RUNNING, State.IMPORTING))
    assert Build.objects.filter(is_background=True, state=State.PENDING).exists()
    newest = Build.objects.order_by("-pk").first()
    assert newest.state in (State.PENDING, State.RUNNING, State.IMPORTING)
    assert newest.ended_on is None


def test_monitor_costs_the_same_and_builds_no_row_objects_at_any_size(
    instance, client, django_assert_num_queries
):
    small = Project.objects.exclude(name="bigproject").filter(packages__isnull=False).first()
    small_url = f"/coprs/{small.ownername}/{small.name}/monitor/detailed/"
    with CaptureQueriesContext(connection) as few:
        assert client.get(small_url).status_code == 200
    for url in (f"{BIG}/monitor/", f"{BIG}/monitor/detailed/"):
        with models_built() as built, django_assert_num_queries(len(few)):
            response = client.get(url)
        assert len(response.context["rows"]) == BIG_PACKAGES
        # The project, its owner and chroots: none per package or cell (6,000 at scale).
        assert sum(built.values()) <= 12, built
        assert not built["BuildTask"] and not built["Package"] and not built["Build"]
    cells = response.content.decode().count('<span class="state state-')
    assert (
        cells
        == BuildTask.objects.filter(build__project__name="bigproject")
        .values("build__package_id", "chroot_id")
        .exclude(chroot=None)
        .distinct()
        .count()
    )


@pytest.mark.parametrize("page", ["pending", "running", "importing"])
def test_status_pages_read_rows_as_values_in_a_fixed_number_of_queries(
    instance, client, page, django_assert_num_queries
):
    with CaptureQueriesContext(connection) as first:
        client.get(f"/status/{page}/")
    # Many more tasks in the page's state (source tasks for the importing page).
    BuildTask.objects.filter(state=State.SUCCEEDED, chroot__isnull=page == "importing").update(
        state={"importing": State.RUNNING}.get(page, page)
    )
    with models_built() as built, django_assert_num_queries(len(first)):
        response = client.get(f"/status/{page}/?page=2")
    assert response.status_code == 200
    rows = response.context["page"]
    assert len(rows) == 100
    assert not built["BuildTask"] and not built["Build"] and not built["Project"], built
    if rows:
        # No `SELECT` of a JSON column: the rows read a few columns through their joins.
        listing = next(q["sql"] for q in first.captured_queries if "ORDER BY" in q["sql"])
        assert "built_packages" not in listing and "source_json" not in listing


def test_rss_builds_no_project_objects(instance, client, django_assert_num_queries):
    with models_built() as built, django_assert_num_queries(1):
        response = client.get("/rss/all/")
    assert response.content.count(b"<item>") == Project.objects.count()
    assert not built["Project"], built


def counts_over(queries: list[dict]) -> list[str]:
    """The `COUNT` queries that have no `LIMIT`: each reads every row it matches."""
    return [
        query["sql"]
        for query in queries
        if "COUNT(" in query["sql"].upper() and not re.search(r"\bLIMIT\b", query["sql"])
    ]


@pytest.mark.parametrize(
    "url",
    [
        f"{BIG}/builds/",
        f"{BIG}/builds/?page=3",
        f"{BIG}/builds/?state=succeeded",
        "/api/v1/projects/bigowner/bigproject/builds?limit=10",
    ],
)
def test_lists_count_no_further_than_some_pages_ahead(instance, client, url):
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    assert counts_over(queries.captured_queries) == []


def test_a_long_builds_list_pages_past_its_counted_rows(instance, client, monkeypatch):
    monkeypatch.setattr(LookaheadPaginator, "PAGES_AHEAD", 1)
    first = client.get(f"{BIG}/builds/")
    assert b"Page 1 of more than 2" in first.content
    assert first.context["page"].has_next()
    last_page = -(-BIG_BUILDS // 50)
    last = client.get(f"{BIG}/builds/?page={last_page}")
    assert last.context["page"].number == last_page
    assert f"Page {last_page} of {last_page} ({BIG_BUILDS} in all)".encode() in last.content
    beyond = client.get(f"{BIG}/builds/?page={last_page + 5}")
    assert beyond.context["page"].number == last_page


def test_v1_count_is_exact_below_its_cap_and_estimated_beyond(instance, api_client, monkeypatch):
    url = "/api/v1/projects/bigowner/bigproject/builds"
    assert api_client.get(url, {"limit": 10}).json()["count"] == BIG_BUILDS
    monkeypatch.setattr(Pagination, "exact_rows_ahead", 20)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Build._meta.db_table}")
    page = api_client.get(url, {"limit": 10, "offset": 20}).json()
    # More than the 50 counted; the planner's estimate of the project's builds.
    assert page["count"] > 50 and len(page["results"]) == 10


def test_stats_can_find_the_last_month_of_tasks_by_index(instance):
    indexes = connection.introspection.get_constraints(
        connection.cursor(), BuildTask._meta.db_table
    )
    assert any(index["columns"] == ["queued_on"] for index in indexes.values())
