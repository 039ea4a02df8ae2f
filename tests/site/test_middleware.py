"""The body guard: refusals come from the headers alone, before the server waits for a body.

Each request declares a large body and sends only a little of it over a raw socket; the
answer must come at once. A server that read the body first would wait for the rest.
"""

import base64
import socket
from urllib.parse import urlsplit

import pytest

from apps.accounts.services import api_token_regenerate
from apps.builds.models import Build
from tests.factories import ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)
MB = 1024 * 1024
ANSWER_SECONDS = 5  # far more than a refusal takes; the body would never come
FILE_PART_START = (
    b"--xyz\r\n"
    b'Content-Disposition: form-data; name="pkgs"; filename="big-1-1.src.rpm"\r\n'
    b"Content-Type: application/x-rpm\r\n\r\n"
)


@pytest.fixture
def alice():
    user = UserFactory(username="alice")
    ProjectFactory(owner_user=user, name="tools", chroot_names=["fedora-43-x86_64"])
    token = api_token_regenerate(user=user)
    credentials = base64.b64encode(f"{token.login}:{token.token}".encode()).decode()
    return {"Authorization": f"Basic {credentials}"}


def answer_to_partial_body(url: str, path: str, declared: int, headers: dict | None = None):
    """POST declaring `declared` bytes, send the start of a file part; (status, head, body)."""
    parts = urlsplit(url)
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Content-Type: multipart/form-data; boundary=xyz",
        f"Content-Length: {declared}",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    with socket.create_connection((parts.hostname, parts.port), timeout=ANSWER_SECONDS) as conn:
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + FILE_PART_START + b"x" * 1024)
        received = b""
        while not complete(received):
            chunk = conn.recv(65536)  # socket.timeout here: the server waited for the body
            if not chunk:
                break
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split()[1]), head.decode(), body


def complete(received: bytes) -> bool:
    head, separator, body = received.partition(b"\r\n\r\n")
    if not separator:
        return False
    for line in head.decode().lower().splitlines():
        if line.startswith("content-length:"):
            return len(body) >= int(line.split(":")[1])
    return True


UPLOADS = [
    "/api_3/build/create/upload",
    "/api_3/build/create/rpm-upload/",
    "/api/v1/projects/alice/tools/builds",
]


@pytest.mark.parametrize("path", UPLOADS)
def test_anonymous_upload_is_refused_before_its_body(live_server, alice, path):
    status, _, body = answer_to_partial_body(live_server.url, path, 200 * MB)
    assert status == 401
    assert b"Login invalid" in body or b"credentials" in body
    assert not Build.objects.exists()


def test_wrong_token_is_refused_before_the_body(live_server, alice):
    wrong = {"Authorization": "Basic " + base64.b64encode(b"nobody:nothing").decode()}
    status, _, _ = answer_to_partial_body(
        live_server.url, "/api_3/build/create/upload", 200 * MB, wrong
    )
    assert status == 401


def test_anonymous_web_upload_goes_to_login_before_its_body(live_server, alice):
    status, head, _ = answer_to_partial_body(
        live_server.url, "/coprs/alice/tools/add_build/", 200 * MB
    )
    assert status == 302 and "/login/" in head


@pytest.mark.parametrize("path", UPLOADS)
def test_oversized_upload_is_refused_before_its_body(live_server, alice, settings, path):
    settings.MAX_SRPM_BYTES = 100 * MB
    status, _, body = answer_to_partial_body(live_server.url, path, 200 * MB, alice)
    assert status == 413
    assert b"MAX_SRPM_BYTES" in body


def test_oversized_body_elsewhere_is_refused_before_it_is_read(live_server, alice):
    # Not an upload route: Django's form limit (plus room for small files) applies.
    status, _, _ = answer_to_partial_body(
        live_server.url, "/api_3/project/add/alice", 10 * 1024 * MB
    )
    assert status == 413


def test_upload_within_the_limit_reaches_the_view(live_server, alice):
    # The guard lets it through; the view then waits for the rest of the body, which
    # never comes (the server's read times out, the client's first).
    with pytest.raises(TimeoutError):
        answer_to_partial_body(live_server.url, "/api_3/build/create/upload", 2 * MB, alice)
