"""Fixtures for /api/v1 tests: clients authenticated by API token, real SRPMs, a web server."""

import base64
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from apps.accounts.services import api_token_regenerate
from tests.builders.helpers import LocalServer
from tests.builders.srpm_factory import make_binary_rpm, make_srpm
from tests.factories import ProjectFactory, UserFactory

PUBLIC_URL = "http://copr.example.org"


@pytest.fixture(autouse=True)
def isolated_storage(settings, tmp_path: Path) -> None:
    """Uploads, results and keys go to the test's own directory; URLs use a fixed host."""
    settings.UPLOADS_ROOT = tmp_path / "uploads"
    settings.RESULTS_ROOT = tmp_path / "results"
    settings.KEYS_ROOT = tmp_path / "keys"
    settings.PUBLIC_URL = PUBLIC_URL


def basic_auth(login: str, token: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{token}".encode()).decode()


@pytest.fixture
def client_for() -> Callable[..., APIClient]:
    """An API client sending the user's real API token; None gives an anonymous client."""

    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            token = api_token_regenerate(user=user)
            client.credentials(HTTP_AUTHORIZATION=basic_auth(token.login, token.token))
        return client

    return make


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


@pytest.fixture
def bob(db):
    return UserFactory(username="bob")


@pytest.fixture
def hello_project(alice):
    return ProjectFactory(
        name="hello", owner_user=alice, chroot_names=["fedora-43-x86_64", "fedora-44-x86_64"]
    )


@pytest.fixture(scope="session")
def package_files(tmp_path_factory) -> dict[str, Path]:
    """A real tiny SRPM and the binary RPM of the same package, built once per session."""
    directory = tmp_path_factory.mktemp("packages")
    return {"srpm": make_srpm(directory), "rpm": make_binary_rpm(directory)}


@pytest.fixture
def web_server(tmp_path: Path) -> Iterator[LocalServer]:
    """An HTTP server on 127.0.0.1 serving a fresh directory."""
    directory = tmp_path / "www"
    directory.mkdir()
    server = LocalServer(directory)
    server.start()
    yield server
    server.stop()
