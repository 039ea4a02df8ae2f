"""Fixtures for the builder runner tests: real SRPMs, a local web server, job specs."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from builders.protocol import KIND_RPM, KIND_SRPM, JobSpec
from tests.builders.helpers import LocalServer, world_readable_dir
from tests.builders.scm_helpers import GitDaemon
from tests.builders.srpm_factory import make_srpm


@pytest.fixture(autouse=True)
def build_workdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test gets its own workspace parent, so leftovers can be asserted on."""
    path = world_readable_dir("coprsite-test-work-")
    monkeypatch.setenv("COPRSITE_BUILD_WORKDIR", str(path))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def readable_tmp() -> Iterator[Path]:
    """Like tmp_path, but readable by the unprivileged build uid (see world_readable_dir)."""
    path = world_readable_dir("coprsite-test-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def result_dir(tmp_path: Path) -> Path:
    path = tmp_path / "results"
    path.mkdir()
    return path


@pytest.fixture
def hello_srpm(tmp_path: Path) -> Path:
    return make_srpm(tmp_path)


@pytest.fixture
def rpm_job(result_dir: Path) -> Callable[..., JobSpec]:
    """Build an RPM-task JobSpec for an SRPM; keyword arguments override fields."""

    def make(srpm: Path, **overrides: Any) -> JobSpec:
        fields: dict[str, Any] = {
            "task_id": "7-fedora-43-x86_64",
            "kind": KIND_RPM,
            "build_id": 7,
            "owner": "alice",
            "project": "hello-project",
            "result_dir": str(result_dir),
            "source": {"srpm_path": str(srpm)},
            "chroot": "fedora-43-x86_64",
            "arch": "x86_64",
            "macros": {"dist": ".fc43", "fedora": "43"},
            "timeout": 300,
        }
        return JobSpec(**{**fields, **overrides})

    return make


@pytest.fixture
def source_job(result_dir: Path) -> Callable[..., JobSpec]:
    """Build a source-task JobSpec for a `source` dict; keyword arguments override fields."""

    def make(source: dict[str, Any], **overrides: Any) -> JobSpec:
        fields: dict[str, Any] = {
            "task_id": "7",
            "kind": KIND_SRPM,
            "build_id": 7,
            "owner": "alice",
            "project": "hello-project",
            "result_dir": str(result_dir),
            "source": source,
            "timeout": 120,
        }
        return JobSpec(**{**fields, **overrides})

    return make


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[LocalServer]:
    directory = tmp_path / "served"
    directory.mkdir()
    server = LocalServer(directory)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def git_daemon(tmp_path: Path) -> Iterator[GitDaemon]:
    """A `git daemon` on 127.0.0.1 serving the repositories made under tmp_path/git."""
    base = tmp_path / "git"
    base.mkdir()
    daemon = GitDaemon(base)
    daemon.start()
    yield daemon
    daemon.stop()
