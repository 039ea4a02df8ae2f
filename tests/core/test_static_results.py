"""Tests for apps/core/static_results.py: /results/ served from RESULTS_ROOT."""

import gzip
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db

LOG = b"".join(b"line %d of the build\n" % number for number in range(1000))


@pytest.fixture
def results_root(tmp_path: Path, settings) -> Path:
    """A results tree inside tmp_path, next to a secret that must stay out of reach."""
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "secret_key").write_text("do not serve me")
    root = tmp_path / "results"
    build_dir = root / "alice" / "hello" / "fedora-43-x86_64" / "00000001-hello"
    build_dir.mkdir(parents=True)
    (build_dir / "builder-live.log").write_bytes(LOG)
    (build_dir / "builder-live.log.gz").write_bytes(gzip.compress(LOG))
    (build_dir / "hello-1.0-1.fc43.x86_64.rpm").write_bytes(b"\xed\xab\xee\xdb rpm")
    repodata = root / "alice" / "hello" / "fedora-43-x86_64" / "repodata"
    repodata.mkdir()
    (repodata / "primary.xml.gz").write_bytes(gzip.compress(b"<metadata/>"))
    (root / "alice" / "hello:pr:1").mkdir()
    settings.RESULTS_ROOT = root
    return root


BUILD_URL = "/results/alice/hello/fedora-43-x86_64/00000001-hello/"


def test_file_is_served_with_its_bytes(client, results_root):
    response = client.get(BUILD_URL + "hello-1.0-1.fc43.x86_64.rpm")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-rpm"
    assert response["Accept-Ranges"] == "bytes"
    assert b"".join(response.streaming_content) == b"\xed\xab\xee\xdb rpm"


def test_head_gives_headers_without_body(client, results_root):
    response = client.head(BUILD_URL + "builder-live.log")

    assert response.status_code == 200
    assert response["Content-Length"] == str(len(LOG))
    assert b"".join(response.streaming_content) == b""


def test_live_log_is_plain_text(client, results_root):
    response = client.get(BUILD_URL + "builder-live.log")

    assert response["Content-Type"].startswith("text/plain")
    assert "Content-Encoding" not in response
    assert b"".join(response.streaming_content) == LOG


def test_finished_log_is_gzip_encoded_text(client, results_root):
    response = client.get(BUILD_URL + "builder-live.log.gz")

    assert response["Content-Type"].startswith("text/plain")
    assert response["Content-Encoding"] == "gzip"
    assert gzip.decompress(b"".join(response.streaming_content)) == LOG


def test_repodata_is_gzip_bytes_without_content_encoding(client, results_root):
    response = client.get("/results/alice/hello/fedora-43-x86_64/repodata/primary.xml.gz")

    assert response["Content-Type"] == "application/gzip"
    assert "Content-Encoding" not in response
    assert gzip.decompress(b"".join(response.streaming_content)) == b"<metadata/>"


def test_range_request_returns_206_with_those_bytes(client, results_root):
    response = client.get(BUILD_URL + "builder-live.log", headers={"Range": "bytes=100-199"})

    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 100-199/{len(LOG)}"
    assert response["Content-Length"] == "100"
    assert b"".join(response.streaming_content) == LOG[100:200]


@pytest.mark.parametrize(
    ("header", "expected"),
    [("bytes=-10", LOG[-10:]), (f"bytes={len(LOG) - 5}-", LOG[-5:]), ("bytes=0-0", LOG[:1])],
)
def test_open_and_suffix_ranges(client, results_root, header, expected):
    response = client.get(BUILD_URL + "builder-live.log", headers={"Range": header})

    assert response.status_code == 206
    assert b"".join(response.streaming_content) == expected


def test_range_past_the_end_is_416(client, results_root):
    response = client.get(BUILD_URL + "builder-live.log", headers={"Range": f"bytes={len(LOG)}-"})

    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(LOG)}"


def test_log_growing_after_the_request_started_is_cut_at_the_size_seen(client, results_root):
    log = results_root / BUILD_URL.removeprefix("/results/") / "builder-live.log"

    response = client.get(BUILD_URL + "builder-live.log")
    with log.open("ab") as live:
        live.write(b"written while the response streams\n")

    assert b"".join(response.streaming_content) == LOG


def test_directory_index_links_every_entry(client, results_root):
    response = client.get(BUILD_URL)

    assert response.status_code == 200
    hrefs = re.findall(r'href="([^"]+)"', response.content.decode())
    assert hrefs == [
        "./../",
        "./builder-live.log",
        "./builder-live.log.gz",
        "./hello-1.0-1.fc43.x86_64.rpm",
    ]


def test_directory_index_keeps_colons_in_names_relative(client, results_root):
    response = client.get("/results/alice/")

    assert 'href="./hello:pr:1/"' in response.content.decode()


def test_results_root_lists_owners(client, results_root):
    response = client.get("/results/")

    assert response.status_code == 200
    assert re.findall(r'href="([^"]+)"', response.content.decode()) == ["./alice/"]


def test_directory_without_slash_redirects_to_it(client, results_root):
    response = client.get(BUILD_URL.rstrip("/"))

    assert response.status_code == 302
    assert response["Location"] == BUILD_URL


def test_file_with_trailing_slash_is_404(client, results_root):
    assert client.get(BUILD_URL + "builder-live.log/").status_code == 404


def test_missing_file_is_404(client, results_root):
    assert client.get(BUILD_URL + "nothing.rpm").status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "/results/../var/secret_key",
        "/results/%2e%2e/var/secret_key",
        "/results/alice/%2e%2e/%2e%2e/var/secret_key",
        "/results/..%2fvar/secret_key",
        "/results/%2fetc/passwd",
    ],
)
def test_paths_out_of_the_tree_are_404(client, results_root, url):
    response = client.get(url)

    assert response.status_code == 404
    assert b"do not serve me" not in response.content


def test_symlink_out_of_the_tree_is_404(client, results_root):
    (results_root / "alice" / "leak").symlink_to(results_root.parent / "var" / "secret_key")
    (results_root / "alice" / "leakdir").symlink_to(results_root.parent / "var")

    assert client.get("/results/alice/leak").status_code == 404
    assert client.get("/results/alice/leakdir/").status_code == 404
    assert client.get("/results/alice/leakdir/secret_key").status_code == 404


def test_symlink_inside_the_tree_is_followed(client, results_root):
    (results_root / "alice" / "latest").symlink_to(
        results_root / BUILD_URL.removeprefix("/results/")
    )

    response = client.get("/results/alice/latest/builder-live.log")

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == LOG


def test_a_finished_log_is_served_under_its_live_url(client, results_root):
    build_dir = results_root / BUILD_URL.removeprefix("/results/")
    (build_dir / "builder-live.log").unlink()  # compressed: only the .gz is left
    whole = client.get(BUILD_URL + "builder-live.log", headers={"Accept-Encoding": "gzip"})
    assert whole.status_code == 200 and whole["Content-Encoding"] == "gzip"
    assert gzip.decompress(b"".join(whole.streaming_content)) == LOG
    plain = client.get(BUILD_URL + "builder-live.log")
    assert "Content-Encoding" not in plain and b"".join(plain.streaming_content) == LOG
    ranged = client.get(
        BUILD_URL + "builder-live.log", headers={"Range": "bytes=100-", "Accept-Encoding": "gzip"}
    )
    assert ranged.status_code == 206 and b"".join(ranged.streaming_content) == LOG[100:]
    assert ranged["Content-Range"] == f"bytes 100-{len(LOG) - 1}/{len(LOG)}"


def test_a_log_not_yet_compressed_is_served_under_its_gz_url(client, results_root):
    build_dir = results_root / BUILD_URL.removeprefix("/results/")
    (build_dir / "builder-live.log.gz").unlink()
    response = client.get(BUILD_URL + "builder-live.log.gz")
    assert response.status_code == 200 and "Content-Encoding" not in response
    assert b"".join(response.streaming_content) == LOG
