"""SCM sources check out any branch, tag or commit hash of the remote, as Copr does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from builders.protocol import JobSpec
from builders.runner import run_job
from tests.builders.scm_helpers import GitDaemon, commit, git, make_repo, packed_files

SourceJob = Callable[..., JobSpec]


def scm(url: str, committish: str) -> dict:
    return {"type": "scm", "scm_type": "git", "clone_url": url, "committish": committish}


@pytest.fixture
def versions_repo(git_daemon: GitDaemon) -> dict[str, str]:
    """main at 1.0; branch `feature/two` at 2.0; tag `v3` on a commit of no branch at 3.0;
    a commit at 4.0 on a branch deleted afterwards (known only by its hash)."""
    repo = make_repo(git_daemon.base / "hello", packed_files(version="1.0"))
    git(repo, "checkout", "--quiet", "-b", "feature/two")
    commit(repo, packed_files(version="2.0"))
    two = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "--quiet", "-b", "tagged", "main")
    commit(repo, packed_files(version="3.0"))
    git(repo, "tag", "v3")
    git(repo, "checkout", "--quiet", "-b", "gone", "main")
    commit(repo, packed_files(version="4.0"))
    gone = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "--quiet", "main")
    git(repo, "branch", "--quiet", "-D", "tagged", "gone")
    return {"two": two, "gone": gone, "url": git_daemon.url("hello")}


@pytest.mark.parametrize(
    ("committish", "version"),
    [
        ("feature/two", "2.0"),  # a branch other than the default one
        ("v3", "3.0"),  # a tag
        ("two-hash", "2.0"),  # a full hash on another branch
        ("two-short-hash", "2.0"),  # an abbreviated one
        ("gone-hash", "4.0"),  # a commit on no branch, fetched by its hash
        ("main", "1.0"),
    ],
)
def test_committish_names_any_branch_tag_or_hash(
    versions_repo: dict, source_job: SourceJob, result_dir: Path, committish: str, version: str
) -> None:
    named = {
        "two-hash": versions_repo["two"],
        "two-short-hash": versions_repo["two"][:10],
        "gone-hash": versions_repo["gone"],
    }.get(committish, committish)

    result = run_job(source_job(scm(versions_repo["url"], named)))

    assert result.state == "succeeded", result.failure_reason
    assert result.srpm["version"] == version


def test_unknown_committish_says_so(
    versions_repo: dict, source_job: SourceJob, result_dir: Path
) -> None:
    result = run_job(source_job(scm(versions_repo["url"], "no-such-branch")))

    assert result.state == "failed"
    assert "has no branch, tag or commit 'no-such-branch'" in result.failure_reason


def test_the_checked_out_commit_is_reported(
    versions_repo: dict, source_job: SourceJob, result_dir: Path
) -> None:
    # A branch moves on: the portal shows which commit this build came from.
    result = run_job(source_job(scm(versions_repo["url"], "feature/two")))

    assert result.state == "succeeded", result.failure_reason
    assert result.srpm["commit"] == versions_repo["two"]
