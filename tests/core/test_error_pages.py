"""templates/403.html, 404.html, 500.html: errors are shown in the site's own layout."""

import pytest
from django.urls import include, path, reverse

from tests.factories import ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


def boom(request):
    raise RuntimeError("a bug")


urlpatterns = [path("boom/", boom), path("", include("coprsite.urls"))]


def in_layout(response) -> str:
    page = response.content.decode()
    assert '<header class="top">' in page and "css/site.css" in page
    return page


def test_unknown_page_is_a_404_in_the_layout(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    page = in_layout(response)
    assert "<h1>Not found</h1>" in page and "/no/such/page/" in page


def test_unknown_project_404_says_which(client):
    response = client.get(reverse("project-detail", args=["nobody", "nothing"]))
    assert response.status_code == 404
    assert "Project nobody/nothing does not exist." in in_layout(response)


def test_forbidden_page_is_a_403_in_the_layout_with_the_reason(client):
    project = ProjectFactory()
    client.force_login(UserFactory(username="mallory"))
    response = client.get(reverse("project-settings", args=[project.ownername, project.name]))
    assert response.status_code == 403
    page = in_layout(response)
    assert f"You cannot edit {project.full_name}." in page and "Logged in as mallory" in page


@pytest.mark.urls(__name__)
def test_server_error_is_a_500_in_the_layout(client):
    client.raise_request_exception = False
    response = client.get("/boom/")
    assert response.status_code == 500
    page = in_layout(response)
    assert "Something went wrong on our side" in page and "a bug" not in page
