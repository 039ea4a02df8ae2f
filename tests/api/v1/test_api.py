"""Tests for what all of apps/api/v1 shares: authentication, error shape, unknown paths, schema."""

import json

import pytest
from django.urls import reverse
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.validation import validate_schema

from apps.api.v1.serializers import Links

pytestmark = pytest.mark.django_db


def test_token_and_session_authenticate(client_for, alice, api_client):
    api_client.force_login(alice)

    by_token = client_for(alice).get("/api/v1/auth-check")
    by_session = api_client.get("/api/v1/auth-check")

    assert by_token.json() == {"id": alice.pk, "name": "alice"}
    assert by_session.json() == {"id": alice.pk, "name": "alice"}


def test_wrong_token_is_401_in_the_error_shape(api_client, alice):
    api_client.credentials(HTTP_AUTHORIZATION="Basic YWxpY2U6d3Jvbmc=")

    response = api_client.get("/api/v1/projects")

    assert response.status_code == 401
    assert response.json()["error"].startswith("Login invalid/expired.")


def test_auth_check_needs_credentials(client_for):
    response = client_for().get("/api/v1/auth-check")

    assert response.status_code == 401
    assert response.json() == {"error": "Authentication credentials were not provided."}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/builds/abc"),
        ("post", "/api/v1/nothing-here"),
        ("get", "/api/v1/projects/alice"),
        ("delete", "/api/v1/projects/alice/hello/builds/1"),
        ("options", "/api/v1/nothing-here"),  # an unknown path, whatever the method
    ],
)
def test_unknown_paths_are_json_404(client_for, method, path):
    response = getattr(client_for(), method)(path)

    assert response.status_code == 404
    assert response.json()["error"].startswith(f"There is no API endpoint at {path};")


def test_method_not_allowed_is_405_in_the_error_shape(client_for, alice):
    response = client_for(alice).put("/api/v1/builds", {}, format="json")

    assert response.status_code == 405
    assert response.json() == {"error": 'Method "PUT" not allowed.'}


def test_schema_is_valid_openapi_without_generator_warnings(client_for):
    GENERATOR_STATS.reset()

    response = client_for().get("/api/v1/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = json.loads(response.content)
    validate_schema(schema)
    assert not GENERATOR_STATS, "drf-spectacular warned while generating the schema"
    assert set(schema["paths"]) == {
        "/api/v1/auth-check",
        "/api/v1/projects",
        "/api/v1/projects/{owner}/{name}",
        "/api/v1/projects/{owner}/{name}/chroots",
        "/api/v1/projects/{owner}/{name}/builds",
        "/api/v1/builds",
        "/api/v1/builds/{build_id}",
        "/api/v1/builds/{build_id}/tasks",
        "/api/v1/builds/{build_id}/resubmit",
        "/api/v1/builds/{build_id}/ssh",
        "/api/v1/tasks/{task_id}",
    }
    assert schema["components"]["securitySchemes"]["apiToken"]["scheme"] == "basic"


def test_schema_as_yaml_and_the_docs_page(client_for):
    schema = client_for().get("/api/v1/schema/")
    docs = client_for().get("/api/v1/docs/")

    assert schema.status_code == 200 and schema.content.startswith(b"openapi: 3.")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


@pytest.mark.parametrize("owner", ["alice", "@devs"])
def test_links_are_what_reverse_gives(rf, owner):
    urls = Links(rf.get("/api/v1/projects"))
    names = (owner, "my-tools_1.0+x")
    assert urls.project(*names) == absolute(reverse("v1-project", args=names))
    assert urls.project(*names, "/builds") == absolute(reverse("v1-project-builds", args=names))
    assert urls.project(*names, "/chroots") == absolute(reverse("v1-project-chroots", args=names))
    assert urls.build(42) == absolute(reverse("v1-build", args=[42]))
    assert urls.build(42, "/tasks") == absolute(reverse("v1-build-tasks", args=[42]))


def absolute(path: str) -> str:
    return f"http://testserver{path}"
