"""The /api_3 plumbing: root, slashes, unknown paths, auth errors, pagination errors."""

import pytest

from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db


def test_root_answers_version_with_and_without_slash(client):
    assert client.get("/api_3/").json() == {"version": 3}
    assert client.get("/api_3").json() == {"version": 3}


def test_unknown_endpoint_is_copr_404(client):
    response = client.get("/api_3/no/such/thing")
    assert response.status_code == 404
    assert response.json() == {"error": "Such API endpoint doesn't exist"}


def test_post_without_trailing_slash_is_not_redirected(copr_client, alice):
    response = copr_client(alice).post(
        "project/add/alice", {"name": "x", "chroots": ["fedora-43-x86_64"]}
    )
    assert response.status_code == 200, response.content
    response = copr_client(alice).post(
        "project/add/alice/", {"name": "y", "chroots": ["fedora-43-x86_64"]}
    )
    assert response.status_code == 200, response.content


def test_wrong_token_gets_copr_401_body(client, settings, alice):
    response = client.post(
        "/api_3/project/add/alice",
        '{"name": "x"}',
        content_type="application/json",
        headers={"Authorization": "Basic YWJjOmRlZg=="},
    )
    assert response.status_code == 401
    assert response.json() == {
        "output": "notok",
        "error": f"Login invalid/expired. Please visit {settings.PUBLIC_URL}/api "
        "to get or renew your API token.",
    }


def test_missing_credentials_on_write_is_401(client):
    response = client.post("/api_3/api-token")
    assert response.status_code == 401


def test_auth_check_names_the_user(copr_client, alice):
    assert copr_client(alice).get("auth-check").json() == {"id": alice.pk, "name": "alice"}


def test_api_token_regeneration_replaces_the_token(copr_client, alice):
    client = copr_client(alice)
    body = client.post("api-token").json()
    assert set(body) == {"api_login", "api_token", "expiration"}
    assert client.get("auth-check").status_code == 401  # the old token is gone


def test_pagination_defaults_and_limits(copr_client, alice):
    for name in ("a", "b", "c"):
        ProjectFactory(owner_user=alice, name=name)
    body = copr_client().get("project/list", {"ownername": "alice"}).json()
    assert [p["name"] for p in body["items"]] == ["a", "b", "c"]
    assert body["meta"] == {"limit": None, "offset": 0, "order": "id", "order_type": "ASC"}
    page = copr_client().get(
        "project/list", {"ownername": "alice", "limit": 1, "offset": 1, "order_type": "DESC"}
    )
    assert [p["name"] for p in page.json()["items"]] == ["b"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"order_type": "desc"}, "order_type must be ASC or DESC"),
        ({"order": "nope"}, "Cannot order by nope"),
        ({"limit": "x"}, "limit: 'x' is not a whole number"),
    ],
)
def test_bad_pagination_is_400_not_500(copr_client, params, message):
    response = copr_client().get("project/list", params)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_put_endpoint_answers_405_json_for_get(copr_client):
    response = copr_client().get("build/cancel/1")
    assert response.status_code == 405
    assert "error" in response.json()


def test_mock_chroots_list_has_active_chroots(copr_client):
    chroots = copr_client().get("mock-chroots/list").json()
    assert "fedora-43-x86_64" in chroots


def test_build_link_redirects_to_the_build(client):
    response = client.get("/coprs/build/42/")
    assert response.status_code == 302
    assert "42" in response["Location"]
