"""Tests for source tasks (builders/fetch.py and the runner): real curl, local web server."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from builders.protocol import JobSpec
from builders.runner import run_job
from tests.builders.helpers import LocalServer, free_port
from tests.builders.srpm_factory import make_binary_rpm, make_srpm

SourceJob = Callable[..., JobSpec]


def rpm_files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.rglob("*.rpm"))


def test_link_downloads_validates_and_stores_the_srpm(
    tmp_path: Path, http_server: LocalServer, source_job: SourceJob, result_dir: Path
) -> None:
    srpm = make_srpm(tmp_path, version="2.0", exclusive_arch=["x86_64"], build_arch="noarch")
    (http_server.directory / "any-name.src.rpm").write_bytes(srpm.read_bytes())

    result = run_job(source_job({"type": "link", "url": http_server.url("any-name.src.rpm")}))

    assert result.state == "succeeded", result.failure_reason
    assert http_server.requests == ["/any-name.src.rpm"]
    assert result.files == ["hello-2.0-1.src.rpm"]
    assert (result_dir / "hello-2.0-1.src.rpm").read_bytes() == srpm.read_bytes()
    assert result.srpm == {
        "filename": "hello-2.0-1.src.rpm",
        "name": "hello",
        "epoch": None,
        "version": "2.0",
        "release": "1",
        "exclusivearch": ["x86_64"],
        "excludearch": [],
        "buildarch": ["noarch"],
    }
    results = json.loads((result_dir / "results.json").read_text())
    assert (results["name"], results["version"], results["release"]) == ("hello", "2.0", "1")
    tags = results["architecture_specific_tags"]["srpm-header"]
    assert tags == {"exclusivearch": ["x86_64"], "excludearch": [], "buildarch": ["noarch"]}
    assert (result_dir / "success").exists()


def test_http_404_is_named(
    http_server: LocalServer, source_job: SourceJob, result_dir: Path
) -> None:
    url = http_server.url("missing.src.rpm")

    result = run_job(source_job({"type": "link", "url": url}))

    assert result.state == "failed"
    assert result.failure_reason == f"source download failed: HTTP 404 for {url}"
    assert rpm_files(result_dir) == []
    assert not (result_dir / "success").exists()


def test_unreachable_server_is_named(source_job: SourceJob) -> None:
    url = f"http://127.0.0.1:{free_port()}/x.src.rpm"

    result = run_job(source_job({"type": "link", "url": url}))

    assert result.failure_reason == (
        "source download failed: could not connect to 127.0.0.1 (builds reach only public "
        "addresses: not loopback, private or link-local networks, nor the builder itself)"
    )


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/x.src.rpm", "file:///etc/passwd", "gopher://example.org/"]
)
def test_only_http_and_https_are_allowed(url: str, source_job: SourceJob, result_dir: Path) -> None:
    result = run_job(source_job({"type": "link", "url": url}))

    assert result.state == "failed"
    assert result.failure_reason == (
        f"source download failed: only http and https URLs are allowed, not {url}"
    )
    assert rpm_files(result_dir) == []


def test_redirects_are_followed_but_only_to_http(
    tmp_path: Path, http_server: LocalServer, source_job: SourceJob
) -> None:
    (http_server.directory / "hello.src.rpm").write_bytes(make_srpm(tmp_path).read_bytes())
    http_server.redirects["/latest"] = http_server.url("hello.src.rpm")
    http_server.redirects["/sneaky"] = "file:///etc/passwd"

    followed = run_job(source_job({"type": "link", "url": http_server.url("latest")}))
    refused = run_job(
        source_job(
            {"type": "link", "url": http_server.url("sneaky")},
            result_dir=str(tmp_path / "sneaky-results"),
        )
    )

    assert followed.state == "succeeded", followed.failure_reason
    assert refused.failure_reason == (
        "source download failed: only http and https URLs are allowed (a redirect led elsewhere)"
    )


def test_a_file_larger_than_allowed_is_refused(
    tmp_path: Path, http_server: LocalServer, source_job: SourceJob, result_dir: Path
) -> None:
    srpm = make_srpm(tmp_path)
    (http_server.directory / "big.src.rpm").write_bytes(srpm.read_bytes())
    url = http_server.url("big.src.rpm")

    result = run_job(source_job({"type": "link", "url": url}, max_download_bytes=1000))

    assert result.failure_reason == f"source download failed: {url} is larger than 1000 bytes"
    assert rpm_files(result_dir) == []


def test_a_response_without_length_is_cut_at_the_limit(
    http_server: LocalServer, source_job: SourceJob
) -> None:
    url = http_server.url("endless")

    result = run_job(source_job({"type": "link", "url": url}, max_download_bytes=100_000))

    assert result.failure_reason == (f"source download failed: {url} is larger than 100000 bytes")


def test_a_downloaded_non_rpm_is_refused(
    http_server: LocalServer, source_job: SourceJob, result_dir: Path
) -> None:
    (http_server.directory / "notes.txt").write_text("not a package\n")

    result = run_job(source_job({"type": "link", "url": http_server.url("notes.txt")}))

    assert result.failure_reason == "not a source RPM: notes.txt is not an RPM file"
    assert list(result_dir.iterdir()) == [result_dir / "builder-live.log"]


def test_upload_is_validated_and_stored(
    tmp_path: Path, source_job: SourceJob, result_dir: Path
) -> None:
    srpm = make_srpm(tmp_path, name="uploaded", epoch=1)

    result = run_job(source_job({"type": "upload", "path": str(srpm)}))

    assert result.state == "succeeded", result.failure_reason
    assert result.srpm is not None
    assert (result.srpm["name"], result.srpm["epoch"]) == ("uploaded", 1)
    assert rpm_files(result_dir) == ["uploaded-1.0-1.src.rpm"]


def test_uploaded_binary_rpm_is_refused(
    tmp_path: Path, source_job: SourceJob, result_dir: Path
) -> None:
    rpm = make_binary_rpm(tmp_path)

    result = run_job(source_job({"type": "upload", "path": str(rpm)}))

    assert result.failure_reason == (
        f"not a source RPM: {rpm.name} is a binary RPM, not a source RPM"
    )
    assert rpm_files(result_dir) == []


def test_upload_stored_in_the_result_dir_survives_the_cleanup(
    tmp_path: Path, source_job: SourceJob, result_dir: Path
) -> None:
    upload = result_dir / "upload.src.rpm"
    upload.write_bytes(make_srpm(tmp_path).read_bytes())

    result = run_job(source_job({"type": "upload", "path": str(upload)}))

    assert result.state == "succeeded", result.failure_reason
    assert rpm_files(result_dir) == ["hello-1.0-1.src.rpm", "upload.src.rpm"]
