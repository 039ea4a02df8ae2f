"""Subversion SCM sources through git-svn, from an `svnserve` on 127.0.0.1."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from builders.protocol import JobSpec
from builders.runner import run_job
from tests.builders.scm_helpers import SvnServer, make_svn_repo, packed_files, unpacked_files

SourceJob = Callable[..., JobSpec]

pytestmark = pytest.mark.skipif(
    shutil.which("svnserve") is None, reason="needs subversion (apt-get install subversion)"
)


@pytest.fixture
def svn_server(tmp_path: Path) -> Iterator[SvnServer]:
    base = tmp_path / "svn"
    base.mkdir()
    server = SvnServer(base)
    server.start()
    yield server
    server.stop()


def svn_source(url: str, **fields: str) -> dict:
    return {"type": "scm", "scm_type": "svn", "clone_url": url, **fields}


def test_packed_svn_repository(
    svn_server: SvnServer, source_job: SourceJob, result_dir: Path, tmp_path: Path
) -> None:
    make_svn_repo(svn_server.base / "hello", packed_files(version="2.1"), tmp_path / "work")

    result = run_job(source_job(svn_source(svn_server.url("hello"))))

    assert result.state == "succeeded", result.failure_reason
    assert (result.srpm["name"], result.srpm["version"]) == ("hello", "2.1")


def test_unpacked_svn_repository_in_a_subdirectory(
    svn_server: SvnServer, source_job: SourceJob, result_dir: Path, tmp_path: Path
) -> None:
    files = {f"pkg/{name}": content for name, content in unpacked_files("svnpkg").items()}
    make_svn_repo(svn_server.base / "layered", files, tmp_path / "work")

    result = run_job(source_job(svn_source(svn_server.url("layered"), subdirectory="pkg")))

    assert result.state == "succeeded", result.failure_reason
    assert result.srpm["filename"] == "svnpkg-1.0-1.src.rpm"


def test_local_svn_url_is_refused(source_job: SourceJob, result_dir: Path) -> None:
    result = run_job(source_job(svn_source("file:///etc")))

    assert (result.state, result.failure_reason) == (
        "failed",
        "svn sources must be remote (http, https, svn, svn+ssh), not 'file:'",
    )
