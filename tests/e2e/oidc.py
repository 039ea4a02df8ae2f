"""Fixtures and helpers for browser logins through a real OIDC provider (PYTEST_DONT_REWRITE)."""

# The provider is django-oauth-toolkit with OIDC on, running as its own process with its own
# database, users, groups and cookies (tests/oidc_provider), as a real identity provider does.
# Chromium (Debian's /usr/bin/chromium) is driven by Playwright, headless. Use from a test module
# (see tests/e2e/test_login.py):
#
#     from tests.e2e.oidc import PACKAGER, oidc_login
#
#     pytest_plugins = ["tests.e2e.oidc"]  # the fixtures
#
#     def test_something(oidc_provider, browser_page, live_server):
#         oidc_login(browser_page, live_server, PACKAGER.username, PACKAGER.password)
#         # logged in as "alice", a member of @packagers
#
# PYTEST_DONT_REWRITE: test modules import the helpers before pytest loads this as a plugin,
# too late for assertion rewriting; the helpers fail with pytest.fail instead.

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "screenshots"
# Debian names the browser chromium, Fedora chromium-browser.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PROVIDER_NAME = "Test IdP"
# Generous: the machine is shared with other test runs.
BROWSER_TIMEOUT_MS = 60_000
STARTUP_SECONDS = 120


@dataclass(frozen=True)
class ProviderUser:
    username: str
    password: str
    groups: tuple[str, ...] = ()


# The default provider user every `oidc_provider` test gets: a member of group `packagers`.
PACKAGER = ProviderUser("alice", "alice-at-the-idp-1", ("packagers",))


@dataclass
class OidcProvider:
    """A running test provider; `add_user` and `register_client` change its database."""

    url: str
    environment: dict = field(repr=False)
    registered_portals: set = field(default_factory=set, repr=False)

    @property
    def issuer(self) -> str:
        return f"{self.url}/o"

    def endpoint(self, name: str) -> str:
        paths = {
            "authorization": "/o/authorize/",
            "token": "/o/token/",
            "userinfo": "/o/userinfo/",
            "jwks": "/o/.well-known/jwks.json",
            "discovery": "/o/.well-known/openid-configuration",
        }
        return self.url + paths[name]

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "django", *args],
            cwd=ROOT,
            env=self.environment,
            check=True,
            capture_output=True,
            text=True,
            timeout=STARTUP_SECONDS,
        )
        return done.stdout.strip()

    def add_user(
        self,
        username: str,
        password: str,
        *,
        groups: tuple[str, ...] | list[str] = (),
        email: str = "",
        nickname: str = "",
    ) -> str:
        """Create or update a provider user with exactly `groups`; returns its `sub`."""
        group_args = [arg for name in groups for arg in ("--group", name)]
        return self.manage(
            "idp_user",
            username,
            "--password",
            password,
            "--email",
            email,
            "--nickname",
            nickname,
            *group_args,
        )

    def register_client(self, *, client_id: str, client_secret: str, redirect_uri: str) -> None:
        self.manage(
            "idp_client", client_id, "--secret", client_secret, "--redirect-uri", redirect_uri
        )

    def configure_portal(self, settings, *, portal_url: str) -> str:
        """Register a client for the portal at `portal_url` and point its OIDC settings here."""
        client_id = "coprsite-" + portal_url.split("//", 1)[1].replace(":", "-")
        client_secret = f"secret-of-{client_id}"
        if portal_url not in self.registered_portals:
            self.register_client(
                client_id=client_id,
                client_secret=client_secret,
                redirect_uri=f"{portal_url}/oidc_auth/",
            )
            self.registered_portals.add(portal_url)
        settings.OIDC_PROVIDER_NAME = PROVIDER_NAME
        settings.OIDC_RP_CLIENT_ID = client_id
        settings.OIDC_RP_CLIENT_SECRET = client_secret
        settings.OIDC_OP_AUTHORIZATION_ENDPOINT = self.endpoint("authorization")
        settings.OIDC_OP_TOKEN_ENDPOINT = self.endpoint("token")
        settings.OIDC_OP_USER_ENDPOINT = self.endpoint("userinfo")
        settings.OIDC_OP_JWKS_ENDPOINT = self.endpoint("jwks")
        settings.OIDC_RP_SIGN_ALGO = "RS256"
        settings.OIDC_RP_SCOPES = "openid profile email groups"
        return client_id


def rsa_private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the test OIDC provider exited with {process.returncode}")
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    pytest.fail(f"the test OIDC provider did not answer at {url}")


@pytest.fixture(scope="session")
def oidc_provider_server(tmp_path_factory) -> Iterator[OidcProvider]:
    """The provider process for the whole session, with a freshly generated RS256 key."""
    workdir = tmp_path_factory.mktemp("oidc-provider")
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.oidc_provider.settings",
        "IDP_DATABASE": str(workdir / "idp.sqlite3"),
        "IDP_RSA_PRIVATE_KEY": rsa_private_key_pem(),
        "PYTHONPATH": str(ROOT),
    }
    port = free_port()
    provider = OidcProvider(url=f"http://127.0.0.1:{port}", environment=environment)
    provider.manage("migrate", "--noinput")
    log = (workdir / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "django", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_serving(provider.endpoint("discovery"), process)
        yield provider
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture
def oidc_provider(oidc_provider_server, live_server, settings) -> OidcProvider:
    """OIDC login on for the live server, against the provider, which knows user PACKAGER."""
    oidc_provider_server.configure_portal(settings, portal_url=live_server.url)
    oidc_provider_server.add_user(PACKAGER.username, PACKAGER.password, groups=PACKAGER.groups)
    return oidc_provider_server


@pytest.fixture
def oidc_provider_for_client(oidc_provider_server, settings) -> OidcProvider:
    """OIDC login on for Django's test client (http://testserver), no browser needed."""
    oidc_provider_server.configure_portal(settings, portal_url="http://testserver")
    oidc_provider_server.add_user(PACKAGER.username, PACKAGER.password, groups=PACKAGER.groups)
    return oidc_provider_server


def oidc_login_with_client(client, provider: OidcProvider, username: str, password: str):
    """Run the whole code flow with Django's test client; returns the callback's response.

    The portal side runs in the test client; the provider's login form is filled in with
    `requests`, the way a browser would, and its redirect back is handed to the client.
    """
    start = client.get("/oidc_login/")
    browser = requests.Session()
    login_form = browser.get(start["Location"], timeout=30)
    submitted = browser.post(
        login_form.url,
        data={
            "csrfmiddlewaretoken": browser.cookies["idp_csrftoken"],
            "username": username,
            "password": password,
        },
        allow_redirects=False,
        timeout=30,
    )
    if submitted.status_code != 302:
        pytest.fail(f"the provider refused {username}'s password")
    authorized = browser.get(
        provider.url + submitted.headers["Location"], allow_redirects=False, timeout=30
    )
    callback = authorized.headers["Location"]
    if not callback.startswith("http://testserver/oidc_auth/"):
        pytest.fail(f"the provider did not send the browser back: {callback}")
    return client.get(callback.removeprefix("http://testserver"))


@pytest.fixture(scope="module")
def chromium():
    """One headless Debian chromium for a test module.

    Not for the session: Playwright's sync API keeps an event loop running in this thread
    while it is open, and other modules' code (pulp-glue's asyncio.run) cannot run then.
    """
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed (scripts/install-system-deps --test, as root)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls
    # are still plain synchronous code, which Django would otherwise refuse here.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def browser_page(chromium):
    """A fresh browser context (no cookies) and page for one test."""
    context = chromium.new_context()
    context.set_default_timeout(BROWSER_TIMEOUT_MS)
    context.set_default_navigation_timeout(BROWSER_TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


def save_screenshot(page, name: str) -> Path:
    """Save a full-page PNG to screenshots/<name>.png (git-ignored)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def oidc_login(page, live_server, username: str, password: str, *, screenshots: str = "") -> None:
    """Log in at the portal through the provider's form; ends back on the portal, logged in.

    `live_server` is pytest-django's fixture or a base URL. When the provider still has a
    session for this browser it sends the browser straight back, without its form. With
    `screenshots` set, the login page and the provider's form are saved under that prefix.
    """
    from playwright.sync_api import expect

    base_url = getattr(live_server, "url", live_server).rstrip("/")
    page.goto(f"{base_url}/login/")
    if screenshots:
        save_screenshot(page, f"{screenshots}-login-page")
    page.get_by_role("link", name=f"Log in with {PROVIDER_NAME}").click()
    provider_form = page.locator("#idp-login-form")
    logout_button = page.get_by_role("button", name="Log out")
    provider_form.or_(logout_button).first.wait_for()
    if provider_form.is_visible():
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        if screenshots:
            save_screenshot(page, f"{screenshots}-provider-form")
        page.get_by_role("button", name="Sign in").click()
    expect(logout_button).to_be_visible()
    if not page.url.startswith(base_url):
        pytest.fail(f"the login ended at {page.url}, not on the portal")


def log_out(page) -> None:
    """Press the header's logout button; ends on a page that offers "Log in"."""
    from playwright.sync_api import expect

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("link", name="Log in", exact=True)).to_be_visible()
