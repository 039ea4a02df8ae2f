"""Search by substring (project names, descriptions, package names) and big owners' pages."""

import pytest
from django.urls import reverse

from apps.packages.models import Package
from apps.projects.models import Project
from apps.projects.pages import PROJECTS_PER_PAGE, CappedPaginator
from apps.site.views import SEARCH_RESULTS_PER_PAGE
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db


def found(client, query: str) -> list[str]:
    response = client.get(reverse("search"), {"q": query})
    assert response.status_code == 200
    return [project["full_name"] for project in response.context["page"]]


def test_search_matches_part_of_a_package_name(client, personal_project):
    Package.objects.create(project=personal_project, name="hello-newc")
    ProjectFactory(name="other", owner_user=personal_project.owner_user)
    assert found(client, "newc") == ["alice/hello"]
    assert found(client, "NEWC") == ["alice/hello"]


def test_search_finds_the_projects_of_many_matching_packages(client, alice):
    """The projects of a few hundred matching packages, newest first."""
    many = 205
    projects = Project.objects.bulk_create(
        Project(name=f"p{n:03}", owner_user=alice, created_by=alice) for n in range(many)
    )
    Package.objects.bulk_create(Package(project=p, name=f"python-x{p.name}") for p in projects)
    ProjectFactory(name="unrelated", owner_user=alice)
    response = client.get(reverse("search"), {"q": "python-x"})
    assert response.context["page"].paginator.count == many
    assert [p["name"] for p in response.context["page"]] == [
        f"p{n:03}" for n in range(many - 1, many - 1 - SEARCH_RESULTS_PER_PAGE, -1)
    ]


def test_a_broad_search_counts_up_to_its_cap_and_says_there_are_more(client, alice, monkeypatch):
    monkeypatch.setattr(CappedPaginator, "CAP", 40)
    Project.objects.bulk_create(
        Project(name=f"python-{n:03}", owner_user=alice, created_by=alice) for n in range(45)
    )
    response = client.get(reverse("search"), {"q": "python"})

    page = response.context["page"]
    assert (page.paginator.count, page.paginator.more, page.paginator.num_pages) == (40, True, 2)
    assert "Page 1 of 2 (the first 40 of more; narrow the search to see the rest)" in (
        response.content.decode()
    )
    exact = client.get(reverse("search"), {"q": "python-00"}).context["page"].paginator
    assert (exact.count, exact.more) == (10, False)


def test_search_matches_part_of_a_project_name_or_description(client, alice):
    ProjectFactory(name="python-tools", owner_user=alice)
    ProjectFactory(name="misc", owner_user=alice, description="Backports of PyThon modules")
    ProjectFactory(name="unrelated", owner_user=alice)
    assert sorted(found(client, "python")) == ["alice/misc", "alice/python-tools"]
    assert found(client, "ython-to") == ["alice/python-tools"]
    assert sorted(found(client, "alice")) == ["alice/misc", "alice/python-tools", "alice/unrelated"]


def test_user_page_shows_a_page_of_projects(client, alice, django_assert_max_num_queries):
    for number in range(PROJECTS_PER_PAGE + 5):
        ProjectFactory(name=f"p{number:03}", owner_user=alice)
    url = reverse("user-detail", args=["alice"])
    with django_assert_max_num_queries(10):
        first = client.get(url).context["page"]
    assert len(first) == PROJECTS_PER_PAGE and first.paginator.count == PROJECTS_PER_PAGE + 5
    second = client.get(url, {"page": 2})
    assert [p["name"] for p in second.context["page"]] == [f"p{n:03}" for n in range(30, 35)]
    assert b'rel="prev"' in second.content
