"""The login page, password login and its switch, logout and CSRF."""

import pytest
from django.test import Client, RequestFactory

from apps.accounts.models import User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's


def logged_in(client) -> bool:
    return client.get("/login/").wsgi_request.user.is_authenticated


def configure_oidc(settings):
    settings.OIDC_PROVIDER_NAME = "Example SSO"
    settings.OIDC_RP_CLIENT_ID = "coprsite"
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = "https://sso.example/authorize"
    settings.OIDC_OP_TOKEN_ENDPOINT = "https://sso.example/token"
    settings.OIDC_OP_USER_ENDPOINT = "https://sso.example/userinfo"
    settings.OIDC_OP_JWKS_ENDPOINT = "https://sso.example/jwks"


def test_password_login_and_logout(client):
    UserFactory(username="ivan")
    response = client.post("/login/", {"username": "ivan", "password": PASSWORD})
    assert response.status_code == 302
    assert logged_in(client)
    client.post("/logout/")
    assert not logged_in(client)


def test_page_shows_the_password_form_and_no_provider_by_default(client):
    page = client.get("/login/").content.decode()
    assert 'id="password-login"' in page
    assert "Log in with" not in page


def test_an_inactive_user_cannot_log_in_with_a_password(client):
    UserFactory(username="judy", is_active=False)
    response = client.post("/login/", {"username": "judy", "password": PASSWORD})
    assert response.status_code == 200  # the form again, with an error
    assert not logged_in(client)


def test_password_login_off_hides_the_form_and_refuses_credentials(client, settings):
    settings.LOCAL_PASSWORD_LOGIN = False
    configure_oidc(settings)
    UserFactory(username="ken")
    page = client.get("/login/").content.decode()
    assert 'id="password-login"' not in page
    assert "Log in with Example SSO" in page

    response = client.post("/login/", {"username": "ken", "password": PASSWORD})
    assert response.status_code == 403
    assert "Password login is turned off" in response.content.decode()
    assert not logged_in(client)
    # Every other way in with a password is closed too: the backend itself refuses.
    # (The login throttle needs the request, as every real login passes it.)
    assert not client.login(request=RequestFactory().post("/"), username="ken", password=PASSWORD)
    response = client.post("/admin/login/", {"username": "ken", "password": PASSWORD})
    assert not logged_in(client)


def test_password_login_off_refuses_the_console_login_for_staff(client, settings):
    settings.LOCAL_PASSWORD_LOGIN = False
    UserFactory(username="root", is_staff=True, is_superuser=True)
    client.post("/admin/login/", {"username": "root", "password": PASSWORD})
    assert client.get("/admin/").status_code == 302


def test_oidc_button_carries_the_next_page(client, settings):
    configure_oidc(settings)
    page = client.get("/login/?next=/api/").content.decode()
    assert 'href="/oidc_login/?next=%2Fapi%2F"' in page
    response = client.get("/oidc_login/?next=/api/")
    assert response["Location"].startswith("https://sso.example/authorize?")
    assert "redirect_uri=http%3A%2F%2Ftestserver%2Foidc_auth%2F" in response["Location"]
    assert "code_challenge_method=S256" in response["Location"]


def test_forms_need_the_csrf_token():
    UserFactory(username="leo")
    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/login/", {"username": "leo", "password": PASSWORD})
    assert response.status_code == 403
    assert not logged_in(strict)
    strict.force_login(User.objects.get(username="leo"))
    assert strict.post("/logout/").status_code == 403
    assert logged_in(strict)


def test_allauth_local_account_pages_are_not_offered(client):
    assert client.get("/accounts/signup/").status_code == 404
    assert client.get("/accounts/password/reset/").status_code == 404
    assert client.get("/accounts/login/?next=/api/")["Location"] == "/login/?next=/api/"
