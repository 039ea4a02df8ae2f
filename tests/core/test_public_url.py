"""PUBLIC_URL against the address served: what `make run` defaults it to, and when it misses."""

import pytest

from coprsite.public_url import public_url_for, public_url_mismatch

EVERY_INTERFACE = "0.0.0.0"  # noqa: S104 (an address to compare with, never bound)


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("127.0.0.1", 18300, "http://127.0.0.1:18300"),
        (EVERY_INTERFACE, "8000", "http://127.0.0.1:8000"),
        ("localhost", 9000, "http://localhost:9000"),
        ("::1", 8000, "http://[::1]:8000"),
        ("192.0.2.7", 8080, "http://192.0.2.7:8080"),
    ],
)
def test_make_run_links_follow_the_address_it_serves(host, port, url):
    assert public_url_for(host, port) == url


@pytest.mark.parametrize(
    ("public_url", "host", "port"),
    [
        ("http://127.0.0.1:8000", "127.0.0.1", 18300),
        ("http://localhost:8000", EVERY_INTERFACE, "18300"),
        ("http://127.0.0.1", "127.0.0.1", 8000),  # port 80 implied
        ("http://[::1]:8000", "::1", 8001),
        ("http://192.0.2.7:8000", "192.0.2.7", 9000),
        ("http://127.0.0.1:8000", "192.0.2.7", 8000),  # only this machine follows the links
    ],
)
def test_a_public_url_that_misses_the_served_address_is_explained(public_url, host, port):
    problem = public_url_mismatch(public_url, host, port)
    assert public_url in problem and "PUBLIC_URL=" in problem


@pytest.mark.parametrize(
    ("public_url", "host", "port"),
    [
        ("http://127.0.0.1:18300", "127.0.0.1", 18300),
        ("http://localhost:8000/", "127.0.0.1", "8000"),
        ("http://127.0.0.1:8000", EVERY_INTERFACE, 8000),
        ("https://copr.example.org", "127.0.0.1", 8000),  # a proxy in front
        ("http://copr.example.org:8000", EVERY_INTERFACE, 18300),  # another name: left alone
    ],
)
def test_a_public_url_that_reaches_the_served_address_passes(public_url, host, port):
    assert public_url_mismatch(public_url, host, port) == ""
