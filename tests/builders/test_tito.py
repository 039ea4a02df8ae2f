"""tito and tito_test SCM sources: the latest tag's release, or the checked-out commit."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import rpmfile

from builders.protocol import JobSpec
from builders.runner import run_job
from tests.builders.scm_helpers import (
    TITO_PROPS,
    GitDaemon,
    make_repo,
    make_tito_repo,
    packed_files,
)
from tests.builders.tools import builder_tools_dir

SourceJob = Callable[..., JobSpec]


@pytest.fixture
def tools() -> Path:
    return builder_tools_dir()


def tito_source(url: str, method: str, tools: Path, **fields: str) -> dict:
    return {
        "type": "scm",
        "scm_type": "git",
        "clone_url": url,
        "srpm_build_method": method,
        "builder_tools": str(tools),
        **fields,
    }


def packed_hello(srpm: Path) -> str:
    """hello.txt from the tarball tito packed into the SRPM."""
    with rpmfile.open(str(srpm)) as package:
        member = next(m for m in package.getmembers() if m.name.endswith(".tar.gz"))
        data = package.extractfile(member).read()
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith("/hello.txt"))
        return archive.extractfile(member).read().decode()


def test_tito_builds_the_latest_tag(
    git_daemon: GitDaemon, source_job: SourceJob, result_dir: Path, tools: Path
) -> None:
    make_tito_repo(git_daemon.base / "titoed")

    result = run_job(source_job(tito_source(git_daemon.url("titoed"), "tito", tools)))

    assert result.state == "succeeded", result.failure_reason
    assert (result.srpm["name"], result.srpm["version"], result.srpm["release"]) == (
        "hello",
        "1.0",
        "1",
    )
    assert packed_hello(result_dir / "hello-1.0-1.src.rpm") == "hello from the tagged release\n"


def test_tito_test_builds_the_checked_out_commit(
    git_daemon: GitDaemon, source_job: SourceJob, result_dir: Path, tools: Path
) -> None:
    _, newest = make_tito_repo(git_daemon.base / "titoed")

    result = run_job(source_job(tito_source(git_daemon.url("titoed"), "tito_test", tools)))

    assert result.state == "succeeded", result.failure_reason
    assert result.srpm["version"] == "1.0"
    # tito's test release: <release>.git.<commits since the tag>.<short commit>
    assert result.srpm["release"] == f"1.git.1.{newest[:7]}"
    srpm = result_dir / result.srpm["filename"]
    assert packed_hello(srpm) == "hello from after the release\n"


def test_tito_test_of_an_older_committish(
    git_daemon: GitDaemon, source_job: SourceJob, result_dir: Path, tools: Path
) -> None:
    tagged, _ = make_tito_repo(git_daemon.base / "titoed")

    source = tito_source(git_daemon.url("titoed"), "tito_test", tools, committish=tagged)
    result = run_job(source_job(source))

    assert result.state == "succeeded", result.failure_reason
    assert packed_hello(result_dir / result.srpm["filename"]) == "hello from the tagged release\n"


def test_tito_without_tito_metadata_fails_clearly(
    git_daemon: GitDaemon, source_job: SourceJob, result_dir: Path, tools: Path
) -> None:
    make_repo(git_daemon.base / "plain", packed_files())

    result = run_job(source_job(tito_source(git_daemon.url("plain"), "tito", tools)))

    assert (result.state, result.failure_reason) == (
        "failed",
        "tito needs a repository set up for tito (`tito init` makes .tito/)",
    )


def test_tito_without_a_tagged_release_fails_clearly(
    git_daemon: GitDaemon, source_job: SourceJob, result_dir: Path, tools: Path
) -> None:
    files = {**packed_files(), ".tito/tito.props": TITO_PROPS, ".tito/packages/.readme": "x\n"}
    make_repo(git_daemon.base / "untagged", files)

    result = run_job(source_job(tito_source(git_daemon.url("untagged"), "tito", tools)))

    assert (result.state, result.failure_reason) == (
        "failed",
        "tito found no tagged release in .tito/packages: tag one with `tito tag` and push the tags",
    )
