"""GitHub and GitLab login through allauth: buttons, redirects, and GitLab's whole dance."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from apps.accounts.models import User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


class FakeGitLab(BaseHTTPRequestHandler):
    """The two calls allauth makes to a self-hosted GitLab after the browser comes back."""

    profile = {}
    token_requests = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        if self.path != "/oauth/token":
            return self.answer(404, {"error": "not found"})
        self.token_requests.append(parse_qs(body))
        self.answer(200, {"access_token": "gitlab-token", "token_type": "bearer"})

    def do_GET(self):
        query = parse_qs(urlsplit(self.path).query)
        if not self.path.startswith("/api/v4/user") or query.get("access_token") != [
            "gitlab-token"
        ]:
            return self.answer(401, {"message": "401 Unauthorized"})
        self.answer(200, self.profile)

    def answer(self, status: int, payload: dict):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def gitlab(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGitLab)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    settings.SOCIALACCOUNT_PROVIDERS = {
        "gitlab": {
            "APPS": [{"client_id": "gl-id", "secret": "gl-secret", "settings": {"gitlab_url": url}}]
        }
    }
    FakeGitLab.profile = {"id": 4242, "username": "mallory", "email": "m@example.org"}
    FakeGitLab.token_requests = []
    yield url
    server.shutdown()
    server.server_close()


def github(settings):
    settings.SOCIALACCOUNT_PROVIDERS = {
        "github": {"APPS": [{"client_id": "gh-id", "secret": "gh-secret"}]}
    }


def logged_in_username(client) -> str | None:
    user = client.get("/login/").wsgi_request.user
    return user.username if user.is_authenticated else None


def gitlab_login(client, gitlab_url: str):
    """Start at the login page's button; GitLab's approval is a redirect back with a code."""
    start = client.post("/accounts/gitlab/login/?process=login")
    authorize = urlsplit(start["Location"])
    assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}" == (
        f"{gitlab_url}/oauth/authorize"
    )
    state = parse_qs(authorize.query)["state"][0]
    return client.get("/accounts/gitlab/login/callback/", {"code": "the-code", "state": state})


def test_buttons_appear_only_for_configured_providers(client, settings):
    assert "GitHub" not in client.get("/login/").content.decode()
    github(settings)
    page = client.get("/login/").content.decode()
    assert 'action="/accounts/github/login/?process=login"' in page
    assert "Log in with GitHub" in page
    assert "GitLab" not in page


def test_github_login_redirects_to_github_with_our_callback(client, settings):
    github(settings)
    assert client.get("/accounts/github/login/").status_code == 200  # a confirm page, no GET login
    response = client.post("/accounts/github/login/?process=login&next=/api/")
    location = urlsplit(response["Location"])
    query = parse_qs(location.query)
    assert location.netloc == "github.com" and location.path == "/login/oauth/authorize"
    assert query["client_id"] == ["gh-id"]
    assert query["redirect_uri"] == ["http://testserver/accounts/github/login/callback/"]


def test_github_callback_with_a_forged_state_logs_nobody_in(client, settings):
    github(settings)
    client.post("/accounts/github/login/?process=login")
    response = client.get("/accounts/github/login/callback/", {"code": "x", "state": "forged"})
    assert "Third-Party Login Failure" in response.content.decode()
    assert logged_in_username(client) is None


def test_gitlab_login_creates_the_user_and_logs_in_and_out(client, gitlab):
    response = gitlab_login(client, gitlab)
    assert response.status_code == 302
    assert logged_in_username(client) == "mallory"
    token_request = FakeGitLab.token_requests[0]
    assert token_request["code"] == ["the-code"]
    assert token_request["client_secret"] == ["gl-secret"]
    assert not User.objects.get(username="mallory").has_usable_password()
    client.post("/logout/")
    assert logged_in_username(client) is None

    gitlab_login(client, gitlab)  # the second time, the same account
    assert User.objects.filter(username__startswith="mallory").count() == 1


def test_gitlab_login_of_a_disabled_user_is_refused(client, gitlab):
    gitlab_login(client, gitlab)
    client.post("/logout/")
    User.objects.filter(username="mallory").update(is_active=False)
    response = gitlab_login(client, gitlab)
    assert response["Location"] == "/accounts/inactive/"
    assert logged_in_username(client) is None


def test_a_taken_username_asks_for_another_instead_of_taking_over(client, gitlab):
    local = UserFactory(username="mallory")
    response = gitlab_login(client, gitlab)
    assert response["Location"] == "/accounts/3rdparty/signup/"
    assert logged_in_username(client) is None
    signup = client.post("/accounts/3rdparty/signup/", {"username": "mallory", "email": ""})
    assert "A user with that username already exists." in signup.content.decode()
    client.post("/accounts/3rdparty/signup/", {"username": "mallory-gl", "email": ""})
    assert logged_in_username(client) == "mallory-gl"
    assert not local.socialaccount_set.exists()


def test_gitlab_login_works_with_password_login_off(client, gitlab, settings):
    settings.LOCAL_PASSWORD_LOGIN = False
    page = client.get("/login/").content.decode()
    assert "Log in with GitLab" in page and 'id="password-login"' not in page
    gitlab_login(client, gitlab)
    assert logged_in_username(client) == "mallory"
