"""Fixtures for /api_3 tests: Django's test client with Copr's Basic `login:token` auth."""

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from django.http import HttpResponse
from django.test import Client

from apps.accounts.services import api_token_regenerate

PUBLIC_URL = "http://copr.example.org"


@pytest.fixture(autouse=True)
def isolated_storage(settings, tmp_path: Path) -> None:
    settings.UPLOADS_ROOT = tmp_path / "uploads"
    settings.RESULTS_ROOT = tmp_path / "results"
    settings.KEYS_ROOT = tmp_path / "keys"
    settings.PUBLIC_URL = PUBLIC_URL
    settings.SUBMIT_CHECK_URLS = False


def read_streamed(response) -> HttpResponse:
    """A streamed answer (a list without a limit) read whole, as a client receives it."""
    whole = HttpResponse(
        b"".join(response.streaming_content),
        status=response.status_code,
        content_type=response["Content-Type"],
    )
    whole.json = lambda: json.loads(whole.content)
    return whole


class CoprClient:
    """Requests as python-copr sends them: JSON bodies, Basic auth, query parameters."""

    def __init__(self, user=None) -> None:
        self.client = Client()
        self.headers = {}
        if user is not None:
            token = api_token_regenerate(user=user)
            raw = base64.b64encode(f"{token.login}:{token.token}".encode()).decode()
            self.headers = {"Authorization": f"Basic {raw}"}

    def get(self, path: str, params: dict | None = None):
        response = self.client.get(f"/api_3/{path}", params or {}, headers=self.headers)
        return read_streamed(response) if response.streaming else response

    def send(self, method: str, path: str, data=None, params: dict | None = None):
        query = "&".join(f"{k}={v}" for k, v in (params or {}).items())
        return self.client.generic(
            method,
            f"/api_3/{path}" + (f"?{query}" if query else ""),
            json.dumps(data) if data is not None else "",
            content_type="application/json",
            headers=self.headers,
        )

    def post(self, path, data=None, params=None):
        return self.send("POST", path, data, params)

    def put(self, path, data=None, params=None):
        return self.send("PUT", path, data, params)

    def delete(self, path, data=None, params=None):
        return self.send("DELETE", path, data, params)

    def upload(self, path: str, file_path: Path, data: dict, field: str = "pkgs"):
        """Copr's multipart layout: the file part plus a `json` file part with the data."""
        from django.core.files.uploadedfile import SimpleUploadedFile

        return self.client.post(
            f"/api_3/{path}",
            {
                field: SimpleUploadedFile(file_path.name, file_path.read_bytes()),
                "json": SimpleUploadedFile("json", json.dumps(data).encode(), "application/json"),
            },
            headers=self.headers,
        )


@pytest.fixture
def copr_client() -> Callable[..., CoprClient]:
    return CoprClient
