"""Failed-login throttling: the login page, the console's login and API Basic credentials."""

import base64
import datetime

import pytest
from axes.models import AccessAttempt
from django.test import Client

from apps.accounts.services import api_token_regenerate
from tests.e2e.oidc import PACKAGER, oidc_login_with_client
from tests.factories import UserFactory

pytest_plugins = ["tests.e2e.oidc"]
pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's
LIMIT = 10  # LOGIN_FAILURE_LIMIT's default


@pytest.fixture(autouse=True)
def fast_hasher(settings):
    # The throttle is under test, not the hasher: dozens of logins stay fast.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def log_in(username: str, password: str, *, address: str = "192.0.2.1", path="/login/"):
    client = Client(REMOTE_ADDR=address)
    response = client.post(path, {"username": username, "password": password})
    return response, client.session.get("_auth_user_id") is not None


def fail(username: str, times: int, *, address: str = "192.0.2.1") -> None:
    for _ in range(times):
        response, logged_in = log_in(username, "wrong", address=address)
        assert not logged_in


def basic(login: str, token: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{token}".encode()).decode()


def test_the_right_password_after_the_limit_of_wrong_ones_is_refused_with_a_retry_time():
    UserFactory(username="alice")
    fail("alice", LIMIT)

    response, logged_in = log_in("alice", PASSWORD)

    assert not logged_in
    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many failed logins" in page
    assert "Try again in 15 minutes." in page
    assert 'id="password-login"' in page  # the login page itself, not an error page
    assert 0 < int(response["Retry-After"]) <= 15 * 60


def test_wrong_passwords_below_the_limit_do_not_lock():
    UserFactory(username="alice")
    fail("alice", LIMIT - 1)

    _, logged_in = log_in("alice", PASSWORD)

    assert logged_in


def test_one_address_guessing_many_accounts_is_locked_out():
    UserFactory(username="carol")
    for number in range(LIMIT):
        fail(f"someone{number}", 1)

    response, logged_in = log_in("carol", PASSWORD)
    _, from_elsewhere = log_in("carol", PASSWORD, address="198.51.100.7")

    assert (response.status_code, logged_in) == (429, False)
    assert from_elsewhere  # the account itself is not locked, only that address


def test_one_account_guessed_from_many_addresses_is_locked_out():
    UserFactory(username="dave")
    for number in range(LIMIT):
        fail("dave", 1, address=f"203.0.113.{number + 1}")

    response, logged_in = log_in("dave", PASSWORD, address="198.51.100.7")

    assert (response.status_code, logged_in) == (429, False)


def test_the_lockout_ends_after_the_cool_off_time(settings):
    UserFactory(username="erin")
    fail("erin", LIMIT)
    # As if LOGIN_LOCKOUT_MINUTES had passed since the last failure.
    AccessAttempt.objects.update(
        attempt_time=datetime.datetime.now(datetime.UTC) - settings.AXES_COOLOFF_TIME
    )

    _, logged_in = log_in("erin", PASSWORD)

    assert logged_in


def test_a_login_clears_its_own_failures_only():
    UserFactory(username="frank")
    UserFactory(username="mallory")
    fail("frank", LIMIT - 1)
    _, logged_in = log_in("frank", PASSWORD)
    assert logged_in
    fail("frank", LIMIT - 1)  # counted afresh: no lockout yet

    assert log_in("frank", PASSWORD)[1]
    # Mallory guesses at Grace's account and logs into her own one between guesses, from the
    # same address: her logins must not wipe the count of the guesses.
    UserFactory(username="grace")
    for _ in range(LIMIT - 1):
        fail("grace", 1, address="198.51.100.66")
        assert log_in("mallory", PASSWORD, address="198.51.100.66")[1]
    fail("grace", 1, address="198.51.100.67")

    response, logged_in = log_in("grace", PASSWORD, address="203.0.113.200")
    assert (response.status_code, logged_in) == (429, False)


def test_the_console_login_is_throttled_too():
    UserFactory(username="root", is_staff=True, is_superuser=True)
    for _ in range(LIMIT):
        log_in("root", "wrong", path="/admin/login/")

    response, logged_in = log_in("root", PASSWORD, path="/admin/login/")

    assert (response.status_code, logged_in) == (429, False)


def test_behind_a_proxy_the_configured_header_names_the_client(settings):
    settings.LOGIN_CLIENT_IP_HEADER = "X-Forwarded-For"
    UserFactory(username="heidi")
    proxy = Client(REMOTE_ADDR="127.0.0.1")
    for number in range(LIMIT):
        proxy.post(
            "/login/",
            {"username": f"nobody{number}", "password": "wrong"},
            headers={"X-Forwarded-For": "203.0.113.9"},
        )
    # What the client put left of the proxy's own entry is ignored.
    spoofed = {"X-Forwarded-For": "198.51.100.1, 203.0.113.9"}
    other = {"X-Forwarded-For": "198.51.100.1"}

    locked = proxy.post("/login/", {"username": "heidi", "password": PASSWORD}, headers=spoofed)
    allowed = proxy.post("/login/", {"username": "heidi", "password": PASSWORD}, headers=other)

    assert locked.status_code == 429
    assert allowed.status_code == 302


def test_without_the_setting_a_forwarded_header_cannot_dodge_the_lockout():
    UserFactory(username="ivan")
    client = Client(REMOTE_ADDR="192.0.2.1")
    for number in range(LIMIT):
        client.post(
            "/login/",
            {"username": "ivan", "password": "wrong"},
            headers={"X-Forwarded-For": f"198.51.100.{number}"},
        )

    response = client.post("/login/", {"username": "judy", "password": "wrong"})

    assert response.status_code == 429


def test_an_address_locked_out_of_passwords_still_logs_in_through_oidc(oidc_provider_for_client):
    for number in range(LIMIT):
        fail(f"nobody{number}", 1, address="127.0.0.1")  # the test client's address
    client = Client()
    assert client.post("/login/", {"username": "x", "password": "y"}).status_code == 429

    response = oidc_login_with_client(
        client, oidc_provider_for_client, PACKAGER.username, PACKAGER.password
    )

    assert response.status_code == 302 and response["Location"] == "/"
    assert client.session.get("_auth_user_id") is not None
    failures = AccessAttempt.objects.values_list("failures_since_start", flat=True)
    assert sum(failures) == LIMIT  # neither the OIDC login nor the refused attempt counted


# --- API Basic credentials ----------------------------------------------------------------


def test_api_v3_wrong_tokens_then_the_right_one_is_429_in_copr_shape():
    issued = api_token_regenerate(user=UserFactory(username="kim"))
    client = Client(REMOTE_ADDR="192.0.2.1")
    for _ in range(LIMIT - 1):
        wrong = client.get("/api_3/auth-check", HTTP_AUTHORIZATION=basic(issued.login, "x" * 30))
        assert wrong.status_code == 401
    last = client.get("/api_3/auth-check", HTTP_AUTHORIZATION=basic(issued.login, "y" * 30))

    right = client.get("/api_3/auth-check", HTTP_AUTHORIZATION=basic(issued.login, issued.token))

    for response in (last, right):
        assert response.status_code == 429
        assert response.json()["output"] == "notok"
        assert "Try again in 15 minutes." in response.json()["error"]
        assert int(response["Retry-After"]) > 0


def test_api_v1_token_guesses_from_one_address_are_locked_out():
    issued = api_token_regenerate(user=UserFactory(username="liam"))
    client = Client(REMOTE_ADDR="192.0.2.1")
    for number in range(LIMIT):
        client.get("/api/v1/auth-check", HTTP_AUTHORIZATION=basic(f"guess{number}", "x"))

    locked = client.get("/api/v1/auth-check", HTTP_AUTHORIZATION=basic(issued.login, issued.token))
    elsewhere = Client(REMOTE_ADDR="198.51.100.7").get(
        "/api/v1/auth-check", HTTP_AUTHORIZATION=basic(issued.login, issued.token)
    )

    assert locked.status_code == 429
    assert "Too many failed logins" in locked.json()["error"]
    assert elsewhere.json()["name"] == "liam"


def test_the_upload_guard_counts_wrong_tokens_too():
    client = Client(REMOTE_ADDR="192.0.2.1")
    for _ in range(LIMIT):
        client.post(
            "/api_3/build/create/upload",
            data=b"x" * 100,
            content_type="multipart/form-data; boundary=x",
            HTTP_AUTHORIZATION=basic("nobody", "x"),
        )
    issued = api_token_regenerate(user=UserFactory(username="mona"))

    response = client.get("/api_3/auth-check", HTTP_AUTHORIZATION=basic(issued.login, issued.token))

    assert response.status_code == 429


def test_a_locked_username_keeps_its_api_token_working():
    user = UserFactory(username="nina")
    issued = api_token_regenerate(user=user)
    for number in range(LIMIT):
        fail("nina", 1, address=f"203.0.113.{number + 1}")

    response = Client(REMOTE_ADDR="198.51.100.7").get(
        "/api_3/auth-check", HTTP_AUTHORIZATION=basic(issued.login, issued.token)
    )

    assert response.status_code == 200
