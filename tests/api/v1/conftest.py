"""Fixtures for /api/v1 tests: clients authenticated by API token, real SRPMs, a web server."""

import base64
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection
from rest_framework.test import APIClient

from apps.accounts.services import api_token_regenerate
from tests.builders.helpers import LocalServer

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
def web_server(tmp_path: Path, settings) -> Iterator[LocalServer]:
    """An HTTP server on 127.0.0.1 serving a fresh directory (source URLs there need the
    operator's ALLOW_PRIVATE_URLS)."""
    settings.ALLOW_PRIVATE_URLS = True
    directory = tmp_path / "www"
    directory.mkdir()
    server = LocalServer(directory)
    server.start()
    yield server
    server.stop()


def planner_estimate_queries() -> int:
    """Unfiltered v1 lists read PostgreSQL's row estimate (one query) before they count."""
    return 1 if connection.vendor == "postgresql" else 0
