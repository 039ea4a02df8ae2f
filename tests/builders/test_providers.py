"""Source tasks that make the SRPM in the sandbox: spec files, git methods, custom scripts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import rpmfile

from builders.protocol import JobSpec
from builders.runner import run_job, workspaces_removed
from tests.builders.helpers import LocalServer
from tests.builders.scm_helpers import (
    PACKED_SPEC,
    GitDaemon,
    commit,
    commit_zero_file,
    git,
    make_repo,
    packed_files,
    unpacked_files,
)

SourceJob = Callable[..., JobSpec]


def srpm_members(result_dir: Path, name: str) -> list[str]:
    with rpmfile.open(str(result_dir / name)) as srpm:
        return sorted(member.name for member in srpm.getmembers())


def live_log(result_dir: Path) -> str:
    return (result_dir / "builder-live.log").read_text(errors="replace")


def scm(url: str, **fields: str) -> dict:
    return {"type": "scm", "scm_type": "git", "clone_url": url, **fields}


def test_flat_unpacked_repository_is_packed_into_source0(
    git_daemon: GitDaemon, source_job: SourceJob, result_dir: Path
) -> None:
    make_repo(git_daemon.base / "hello", unpacked_files())

    result = run_job(source_job(scm(git_daemon.url("hello"))))

    assert result.state == "succeeded", result.failure_reason
    assert result.srpm["filename"] == "hello-1.0-1.src.rpm"
    assert srpm_members(result_dir, "hello-1.0-1.src.rpm") == ["hello-1.0.tar.gz", "hello.spec"]
    assert "is unpacked" in live_log(result_dir)


def test_flat_packed_repository_builds_as_it_is(
    git_daemon: GitDaemon, source_job: SourceJob, result_dir: Path
) -> None:
    make_repo(git_daemon.base / "hello", packed_files())

    result = run_job(source_job(scm(git_daemon.url("hello"), spec="hello.spec")))

    assert result.state == "succeeded", result.failure_reason
    assert srpm_members(result_dir, "hello-1.0-1.src.rpm") == ["hello.spec", "hello.txt"]
    assert "is packed" in live_log(result_dir)


def test_layered_repository_with_a_shared_spec(
    git_daemon: GitDaemon, source_job: SourceJob, result_dir: Path
) -> None:
    files = unpacked_files("subpkg1")
    make_repo(
        git_daemon.base / "layered",
        {
            "rpm/subpkg1.spec": files["subpkg1.spec"],
            "subpkg1/hello.txt": files["hello.txt"],
            "subpkg2/other.txt": "not this one\n",
        },
    )

    job = scm(git_daemon.url("layered"), subdirectory="subpkg1", spec="rpm/subpkg1.spec")
    result = run_job(source_job(job))

    assert result.state == "succeeded", result.failure_reason
    assert srpm_members(result_dir, "subpkg1-1.0-1.src.rpm") == [
        "subpkg1-1.0.tar.gz",
        "subpkg1.spec",
    ]


def test_refs_committish_is_fetched_first(
    git_daemon: GitDaemon, source_job: SourceJob, result_dir: Path
) -> None:
    repo = make_repo(git_daemon.base / "hello", packed_files(version="1.0"))
    git(repo, "checkout", "--quiet", "-b", "pr")
    commit(repo, packed_files(version="2.0"))
    git(repo, "update-ref", "refs/pull/1/head", "HEAD")
    git(repo, "checkout", "--quiet", "main")
    git(repo, "branch", "--quiet", "-D", "pr")

    result = run_job(source_job(scm(git_daemon.url("hello"), committish="refs/pull/1/head")))

    assert result.state == "succeeded", result.failure_reason
    assert result.srpm["version"] == "2.0"


def test_make_srpm_runs_the_copr_makefile(
    git_daemon: GitDaemon, source_job: SourceJob, result_dir: Path
) -> None:
    makefile = (
        "srpm:\n"
        '\techo "building $(spec) into $(outdir) from $$(pwd)"\n'
        '\trpmbuild -bs $(spec) --define "_sourcedir $$(pwd)" --define "_srcrpmdir $(outdir)"\n'
    )
    make_repo(git_daemon.base / "hello", {**packed_files(), ".copr/Makefile": makefile})

    job = scm(git_daemon.url("hello"), srpm_build_method="make_srpm", spec="hello.spec")
    result = run_job(source_job(job))

    assert result.state == "succeeded", result.failure_reason
    assert "building /build/src/hello/hello.spec into /build/out" in live_log(result_dir)


def test_spec_upload_downloads_remote_sources(
    http_server: LocalServer, source_job: SourceJob, result_dir: Path, readable_tmp: Path
) -> None:
    (http_server.directory / "hello.txt").write_text("remote hello\n")
    spec = readable_tmp / "hello.spec"
    spec.write_text(
        PACKED_SPEC.format(name="hello", version="1.0").replace(
            "Source0: hello.txt", f"Source0: {http_server.url('hello.txt')}"
        )
    )

    result = run_job(source_job({"type": "upload", "path": str(spec)}))

    assert result.state == "succeeded", result.failure_reason
    assert srpm_members(result_dir, "hello-1.0-1.src.rpm") == ["hello.spec", "hello.txt"]
    assert "/hello.txt" in http_server.requests


def test_spec_url_is_downloaded_then_built(
    http_server: LocalServer, source_job: SourceJob, result_dir: Path
) -> None:
    spec_text = PACKED_SPEC.format(name="hello", version="1.0")
    spec_text = spec_text.replace("Source0: hello.txt", f"Source0: {http_server.url('hello.txt')}")
    (http_server.directory / "hello.spec").write_text(spec_text)
    (http_server.directory / "hello.txt").write_text("remote hello\n")

    result = run_job(source_job({"type": "link", "url": http_server.url("hello.spec")}))

    assert result.state == "succeeded", result.failure_reason
    assert result.srpm["name"] == "hello"


def test_custom_script_sees_copr_environment(source_job: SourceJob, result_dir: Path) -> None:
    script = (
        "#!/bin/sh\nset -e\n"
        'echo "env: $COPR_OWNER/$COPR_PROJECT/$COPR_PACKAGE"\n'
        "mkdir -p out && cd out\n"
        "cat > hello.spec <<'SPEC'\n" + PACKED_SPEC.format(name="hello", version="3.0") + "SPEC\n"
        "echo hi > hello.txt\n"
    )
    source = {
        "type": "custom",
        "script": script,
        "chroot": "fedora-43-x86_64",
        "resultdir": "out",
        "package": "hello",
    }

    result = run_job(source_job(source))

    assert result.state == "succeeded", result.failure_reason
    assert result.srpm["version"] == "3.0"
    assert "env: alice/hello-project/hello" in live_log(result_dir)


# --- hostile repositories ----------------------------------------------------------------


@pytest.mark.parametrize(
    "link_target",
    ["/etc/passwd", "../../../../etc/passwd", "sub/../../outside"],
)
def test_symlink_leaving_the_repository_fails(
    git_daemon: GitDaemon, source_job: SourceJob, result_dir: Path, link_target: str
) -> None:
    repo = make_repo(git_daemon.base / "evil", packed_files())
    (repo / "hello.txt").unlink()
    (repo / "hello.txt").symlink_to(link_target)
    commit(repo, {})

    result = run_job(source_job(scm(git_daemon.url("evil"))))

    assert result.state == "failed"
    assert result.failure_reason == (
        f"the repository holds a symlink that leaves it: hello.txt -> {link_target}"
    )
    assert not list(result_dir.glob("*.rpm"))
    assert "root:x:0:0" not in live_log(result_dir)


def test_spec_source_outside_the_directory_fails(
    git_daemon: GitDaemon, source_job: SourceJob, result_dir: Path
) -> None:
    spec = PACKED_SPEC.format(name="hello", version="1.0").replace(
        "Source0: hello.txt", "Source0: ../../../etc/shadow"
    )
    make_repo(git_daemon.base / "evil", {"hello.spec": spec, "hello.txt": "x\n"})

    result = run_job(source_job(scm(git_daemon.url("evil"))))

    assert result.state == "failed"
    assert result.failure_reason == (
        "the spec's Source0 '../../../etc/shadow' points outside the source directory"
    )


def test_subdirectory_climbing_out_fails(
    git_daemon: GitDaemon, source_job: SourceJob, result_dir: Path
) -> None:
    make_repo(git_daemon.base / "hello", packed_files())

    result = run_job(source_job(scm(git_daemon.url("hello"), subdirectory="../..")))

    assert result.state == "failed"
    assert result.failure_reason == "subdirectory '../..' must be a path inside the repository"


def test_endless_make_srpm_times_out(
    git_daemon: GitDaemon, source_job: SourceJob, result_dir: Path, build_workdir: Path
) -> None:
    makefile = "srpm:\n\twhile true; do sleep 1; done\n"
    make_repo(git_daemon.base / "loop", {**packed_files(), ".copr/Makefile": makefile})

    job = scm(git_daemon.url("loop"), srpm_build_method="make_srpm")
    result = run_job(source_job(job, timeout=8))

    assert (result.state, result.failure_reason) == ("failed", "source task timed out after 8 s")
    workspaces_removed(timeout=30)  # after the result, on a thread of its own
    assert list(build_workdir.iterdir()) == []


def test_file_larger_than_the_limit_is_named_without_downloading_it(
    git_daemon: GitDaemon, source_job: SourceJob, result_dir: Path
) -> None:
    repo = make_repo(git_daemon.base / "big", packed_files())
    commit_zero_file(repo, "data/big.img", 64 << 20)

    result = run_job(source_job(scm(git_daemon.url("big")), max_download_bytes=16 << 20))

    assert (result.state, result.failure_reason) == (
        "failed",
        "the repository file data/big.img is larger than the limit of 16777216 bytes",
    )


def test_file_size_limit_holds_when_the_server_cannot_filter(
    git_daemon: GitDaemon, source_job: SourceJob, result_dir: Path
) -> None:
    repo = make_repo(git_daemon.base / "big", packed_files())
    git(repo, "config", "uploadpack.allowFilter", "false")
    commit_zero_file(repo, "big.img", 64 << 20)

    result = run_job(source_job(scm(git_daemon.url("big")), max_download_bytes=16 << 20))

    assert result.state == "failed"
    assert result.failure_reason == (
        "git checkout failed: a file grew beyond the size limit of the source task (16777216 bytes)"
    )
