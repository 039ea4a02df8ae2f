"""API token issue and authentication: valid, wrong, expired, disabled."""

import base64
import datetime

import pytest
from django.utils import timezone

from apps.accounts.models import ApiToken
from apps.accounts.services import api_token_regenerate, user_disable
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
AUTH_CHECK = "/api/v1/auth-check"


def basic(login: str, token: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{token}".encode()).decode()


@pytest.fixture
def issued():
    user = UserFactory(username="alice")
    return user, api_token_regenerate(user=user)


def test_token_is_stored_hashed_with_180_day_expiry(issued):
    user, token = issued
    stored = ApiToken.objects.get(user=user)
    assert len(token.login) == 20 and len(token.token) == 30
    assert token.token not in stored.token_hash
    assert stored.expires_on == timezone.now().date() + datetime.timedelta(days=180)


def test_valid_token_authenticates(api_client, issued):
    _, token = issued
    response = api_client.get(AUTH_CHECK, HTTP_AUTHORIZATION=basic(token.login, token.token))
    assert response.status_code == 200
    assert response.json()["name"] == "alice"


@pytest.mark.parametrize("header", ["wrong-token", "wrong-login", "garbage"])
def test_wrong_credentials_get_401_with_copr_message(api_client, issued, header):
    _, token = issued
    value = {
        "wrong-token": basic(token.login, "x" * 30),
        "wrong-login": basic("nobody", token.token),
        "garbage": "Basic !!!notbase64",
    }[header]
    response = api_client.get(AUTH_CHECK, HTTP_AUTHORIZATION=value)
    assert response.status_code == 401
    assert "Login invalid/expired" in response.json()["error"]


def test_expired_token_is_refused(api_client, issued):
    user, token = issued
    ApiToken.objects.filter(user=user).update(
        expires_on=timezone.now().date() - datetime.timedelta(days=1)
    )
    response = api_client.get(AUTH_CHECK, HTTP_AUTHORIZATION=basic(token.login, token.token))
    assert response.status_code == 401


def test_regenerate_invalidates_old_token(api_client, issued):
    user, old = issued
    new = api_token_regenerate(user=user)
    assert (
        api_client.get(AUTH_CHECK, HTTP_AUTHORIZATION=basic(old.login, old.token)).status_code
        == 401
    )
    assert (
        api_client.get(AUTH_CHECK, HTTP_AUTHORIZATION=basic(new.login, new.token)).status_code
        == 200
    )


def test_disabled_user_token_is_refused(api_client, issued):
    user, token = issued
    user_disable(user=user)
    response = api_client.get(AUTH_CHECK, HTTP_AUTHORIZATION=basic(token.login, token.token))
    assert response.status_code == 401


def test_no_credentials_is_401_not_500(api_client, db):
    assert api_client.get(AUTH_CHECK).status_code == 401


def test_token_page_issues_config_once(client, issued):
    user, _ = issued
    client.force_login(user)
    page = client.get("/api/")
    assert page.status_code == 200 and "token =" not in page.content.decode()
    page = client.post("/api/")
    body = page.content.decode()
    assert "[copr-cli]" in body and "username = alice" in body and "encrypted = False" in body
