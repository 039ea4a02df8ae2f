"""The submit-time check of source URLs never reaches private addresses, even by redirect,
and its messages tell nothing about what answers there."""

import http.server
import threading

import pytest

from apps.builds import sources
from apps.core import urlcheck
from apps.core.errors import ServiceError


class RecordingServer:
    """An HTTP server on a loopback address that answers every GET with `status` and a
    `Location`, and remembers the paths it was asked for."""

    def __init__(self, host: str, status: int = 200, location: str = "") -> None:
        self.requests: list[str] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                recorder.requests.append(self.path)
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "7")
                self.end_headers()
                self.wfile.write(b"secrets")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def internal_service():
    """Stands for PostgreSQL, Redis or the portal: something only loopback reaches."""
    server = RecordingServer("127.0.0.2", status=500)
    yield server
    server.stop()


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "10.0.0.8", "192.168.1.1", "172.16.0.1", "169.254.169.254",
     "[::1]", "[fe80::1]", "0.0.0.0", "[::ffff:10.0.0.1]"],  # noqa: S104 (refused, not bound)
)  # fmt: skip
def test_private_targets_are_refused_before_any_connection(settings, host):
    settings.ALLOW_PRIVATE_URLS = False
    with pytest.raises(ServiceError) as refused:
        sources.probe_url(f"http://{host}:5432/x.src.rpm")
    assert refused.value.message == (
        f"Cannot use the source URL http://{host}:5432/x.src.rpm: "
        "the URL points to a private or local address."
    )


def test_a_loopback_source_is_never_contacted(settings, internal_service):
    settings.ALLOW_PRIVATE_URLS = False
    with pytest.raises(ServiceError) as refused:
        sources.probe_url(f"{internal_service.url}/hello.src.rpm")
    assert internal_service.requests == []
    assert "500" not in refused.value.message


def test_a_redirect_to_a_private_address_is_not_followed(settings, internal_service, monkeypatch):
    """The first hop stands for a public server (127.0.0.1 counts as public here only);
    it redirects to the internal service, which must not be contacted."""
    settings.ALLOW_PRIVATE_URLS = False
    public = RecordingServer("127.0.0.1", status=302, location=f"{internal_service.url}/admin")
    monkeypatch.setattr(urlcheck, "is_public_address", lambda address: address == "127.0.0.1")
    try:
        with pytest.raises(ServiceError) as refused:
            sources.probe_url(f"{public.url}/hello.src.rpm")
    finally:
        public.stop()
    assert public.requests == ["/hello.src.rpm"]
    assert internal_service.requests == []
    assert refused.value.message == (
        f"Cannot use the source URL {internal_service.url}/admin: "
        "the URL points to a private or local address."
    )


def test_the_operator_may_allow_private_sources(settings):
    settings.ALLOW_PRIVATE_URLS = True
    server = RecordingServer("127.0.0.1", status=302, location="/moved.src.rpm")
    try:
        with pytest.raises(ServiceError) as failed:
            sources.probe_url(f"{server.url}/hello.src.rpm")
    finally:
        server.stop()
    # Redirected to itself forever: every hop was followed (and checked), then given up.
    assert server.requests == ["/hello.src.rpm"] + ["/moved.src.rpm"] * sources.MAX_URL_REDIRECTS
    assert failed.value.message == "The source URL redirects more than 5 times."


def test_unreachable_sources_say_so_without_details(settings):
    settings.ALLOW_PRIVATE_URLS = True
    with pytest.raises(ServiceError) as failed:
        sources.probe_url("http://127.0.0.1:1/x.src.rpm")
    assert failed.value.message == "Cannot reach the source URL http://127.0.0.1:1/x.src.rpm."


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://example.org/repo/", True),
        ("copr://bob/tools", True),
        ("copr://bob", False),
        ("file:///etc", False),
        ("http://127.0.0.1/", False),
        ("http://localhost./", False),
        ("http://example.org:99999/", False),
        ("gopher://example.org/", False),
    ],
)
def test_repo_url_rules(settings, url, ok):
    settings.ALLOW_PRIVATE_URLS = False
    assert (urlcheck.repo_url_errors(url) == []) is ok
