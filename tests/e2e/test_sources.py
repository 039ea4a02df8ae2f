"""Every source type, end to end: the real worker makes the SRPM in the sandbox, then builds it.

Everything remote is local: a `git daemon`, an HTTP server for spec URLs, a dist-git with
its lookaside cache, a fake PyPI index and a gem server, all on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.builds.models import Build, BuildTask, State
from apps.builds.package_builds import package_build
from apps.builds.services import BuildOptions, build_submit
from apps.packages.models import DistGitInstance
from apps.packages.services import package_add
from tests.builders.pypi_helpers import publish
from tests.builders.scm_helpers import (
    PACKED_SPEC,
    UNPACKED_SPEC,
    SvnServer,
    commit,
    commit_zero_file,
    git,
    make_repo,
    make_svn_repo,
    make_tito_repo,
    packed_files,
    unpacked_files,
)
from tests.builders.tools import builder_tools_dir
from tests.e2e.conftest import finished_build

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
X86 = BuildOptions(chroots=["fedora-43-x86_64"])


def source_task(build: Build) -> BuildTask:
    return BuildTask.objects.get(build=build, chroot=None)


def assert_succeeded(build: Build, name: str, version: str) -> Build:
    build = finished_build(build.pk, timeout=180)
    source = source_task(build)
    assert (build.state, source.state_reason) == (State.SUCCEEDED, ""), (
        build.state,
        source.state_reason,
        [t.state_reason for t in build.tasks.all()],
    )
    assert (build.package_name, build.package_version.split("-")[0]) == (name, version)
    assert build.srpm_url.endswith(".src.rpm")
    rpms = [p["name"] for t in build.tasks.exclude(chroot=None) for p in t.built_packages]
    assert name in rpms
    return build


def add_and_build(user, project, name, source_type, source_json) -> Build:
    package = package_add(
        user=user, project=project, name=name, source_type=source_type, source_json=source_json
    )
    return package_build(user=user, package=package, options=X86)


def test_spec_upload_and_spec_url(worker, packager, served_directory):
    user, _, project = packager
    directory, url = served_directory
    (directory / "hello.txt").write_text("remote hello\n")
    spec = PACKED_SPEC.format(name="hello", version="1.0").replace(
        "Source0: hello.txt", f"Source0: {url}/hello.txt"
    )
    upload = SimpleUploadedFile("hello.spec", spec.encode(), content_type="text/plain")
    uploaded = build_submit(
        user=user, project=project, source_type="upload", source_json={}, upload=upload, options=X86
    )
    (directory / "other.spec").write_text(spec.replace("Name: hello", "Name: other"))
    linked = build_submit(
        user=user,
        project=project,
        source_type="link",
        source_json={"url": f"{url}/other.spec"},
        options=X86,
    )
    assert_succeeded(uploaded, "hello", "1.0")
    assert_succeeded(linked, "other", "1.0")


def test_git_rpkg_flat_unpacked_layered_and_refs(worker, packager, git_daemon):
    user, _, project = packager
    make_repo(git_daemon.base / "flat", unpacked_files("flat"))
    layered = unpacked_files("subpkg1")
    make_repo(
        git_daemon.base / "layered",
        {
            "rpm/subpkg1.spec": layered["subpkg1.spec"],
            "subpkg1/hello.txt": layered["hello.txt"],
            "subpkg2/packed.spec": PACKED_SPEC.format(name="packed", version="2.5"),
            "subpkg2/hello.txt": "packed hello\n",
        },
    )
    refs = make_repo(git_daemon.base / "refs", packed_files("pr", "1.0"))
    git(refs, "checkout", "--quiet", "-b", "topic")
    commit(refs, packed_files("pr", "2.0"))
    git(refs, "update-ref", "refs/pull/7/head", "HEAD")
    git(refs, "checkout", "--quiet", "main")

    builds = [
        add_and_build(user, project, "flat", "scm", {"clone_url": git_daemon.url("flat")}),
        add_and_build(
            user,
            project,
            "subpkg1",
            "scm",
            {
                "clone_url": git_daemon.url("layered"),
                "subdirectory": "subpkg1",
                "spec": "rpm/subpkg1.spec",
            },
        ),
        add_and_build(
            user,
            project,
            "packed",
            "scm",
            {"clone_url": git_daemon.url("layered"), "subdirectory": "subpkg2"},
        ),
        add_and_build(
            user,
            project,
            "pr",
            "scm",
            {"clone_url": git_daemon.url("refs"), "committish": "refs/pull/7/head"},
        ),
    ]
    for build, (name, version) in zip(
        builds,
        [("flat", "1.0"), ("subpkg1", "1.0"), ("packed", "2.5"), ("pr", "2.0")],
        strict=True,
    ):
        assert_succeeded(build, name, version)


def test_git_make_srpm(worker, packager, git_daemon):
    user, _, project = packager
    makefile = (
        "srpm:\n"
        '\trpmbuild -bs $(spec) --define "_sourcedir $$(pwd)" --define "_srcrpmdir $(outdir)"\n'
    )
    make_repo(git_daemon.base / "made", {**packed_files("made"), ".copr/Makefile": makefile})
    source = {"clone_url": git_daemon.url("made"), "srpm_build_method": "make_srpm"}
    assert_succeeded(add_and_build(user, project, "made", "scm", source), "made", "1.0")


def test_custom_script_sees_the_copr_environment(worker, packager):
    user, _, project = packager
    script = (
        "#!/bin/sh\nset -e\n"
        'echo "COPR env: $COPR_OWNER $COPR_PROJECT $COPR_PACKAGE"\n'
        "mkdir -p result && cd result\n"
        "cat > scripted.spec <<'SPEC'\n"
        + PACKED_SPEC.format(name="scripted", version="4.2")
        + "SPEC\n"
        "echo hi > hello.txt\n"
    )
    source = {"script": script, "chroot": "fedora-43-x86_64", "resultdir": "result"}
    build = assert_succeeded(
        add_and_build(user, project, "scripted", "custom", source), "scripted", "4.2"
    )
    log = build_log(build)
    assert "COPR env: packager tools scripted" in log


def build_log(build: Build) -> str:
    from apps.builds.execution import task_result_dir
    from apps.builds.logs import read_log

    return read_log(task_result_dir(source_task(build)), "builder-live.log")


def build_log_path(build: Build) -> str:
    from apps.builds.execution import task_result_dir

    return str(task_result_dir(source_task(build)) / "builder-live.log")


# --- hostile repositories: failed source tasks with a clear reason, nothing leaked ------------


def failed_reason(build: Build) -> str:
    build = finished_build(build.pk, timeout=180)
    assert build.state == State.FAILED
    assert not BuildTask.objects.filter(build=build).exclude(chroot=None).exists()
    return source_task(build).state_reason


def test_hostile_repositories_fail_with_a_clear_reason(worker, packager, git_daemon, settings):
    user, _, project = packager
    settings.MAX_SRPM_BYTES = 32 << 20
    passwd = make_repo(git_daemon.base / "passwd", packed_files())
    (passwd / "hello.txt").unlink()
    (passwd / "hello.txt").symlink_to("/etc/passwd")
    commit(passwd, {})
    up = make_repo(git_daemon.base / "up", packed_files())
    (up / "escape").symlink_to("../../")
    commit(up, {})
    shadow_spec = PACKED_SPEC.format(name="hello", version="1").replace(
        "Source0: hello.txt", "Source0: ../../../etc/shadow"
    )
    make_repo(git_daemon.base / "shadow", {"hello.spec": shadow_spec})
    big = make_repo(git_daemon.base / "big", packed_files())
    commit_zero_file(big, "sparse.img", 2 << 30)  # 9 MB in git, 2 GiB once checked out
    loop = "srpm:\n\twhile true; do sleep 1; done\n"
    make_repo(git_daemon.base / "loop", {**packed_files(), ".copr/Makefile": loop})

    def build(name, **fields):
        return add_and_build(
            user, project, name, "scm", {"clone_url": git_daemon.url(name), **fields}
        )

    builds = {
        "passwd": build("passwd"),
        "up": build("up"),
        "shadow": build("shadow"),
        "big": build("big"),
    }
    settings.SOURCE_TASK_TIMEOUT = 15
    builds["loop"] = build("loop", srpm_build_method="make_srpm")
    reasons = {name: failed_reason(b) for name, b in builds.items()}
    assert reasons["passwd"] == (
        "the repository holds a symlink that leaves it: hello.txt -> /etc/passwd"
    )
    assert reasons["up"] == "the repository holds a symlink that leaves it: escape -> ../../"
    assert reasons["shadow"] == (
        "the spec's Source0 '../../../etc/shadow' points outside the source directory"
    )
    assert reasons["big"] == (
        "the repository file sparse.img is larger than the limit of 33554432 bytes"
    )
    assert reasons["loop"] == "source task timed out after 15 s"
    host_passwd_line = Path("/etc/passwd").read_text().splitlines()[1]
    for name, b in builds.items():
        log = build_log(b)
        assert host_passwd_line not in log, name
        assert not list(Path(build_log_path(b)).parent.glob("*.rpm")), name


# --- DistGit -------------------------------------------------------------------------------


def tarball(path: Path, top: str, files: dict[str, str]) -> bytes:
    with tarfile.open(path, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path.read_bytes()


def test_distgit_with_lookaside_checksums(worker, packager, git_daemon, served_directory, tmp_path):
    user, _, project = packager
    directory, url = served_directory
    DistGitInstance.objects.create(
        name="local",
        clone_url=f"git://127.0.0.1:{git_daemon.port}",
        clone_package_uri="rpms/{pkgname}.git",
        lookaside_url=url + "/repo/pkgs/{name}/{filename}/{hashtype}/{hash}/{filename}",
    )
    for name, tampered in (("dghello", False), ("dgbad", True)):
        content = tarball(tmp_path / "t.tar.gz", f"{name}-1.0", {"hello.txt": f"{name}\n"})
        digest = hashlib.sha512(content).hexdigest()
        filename = f"{name}-1.0.tar.gz"
        served = directory / "repo/pkgs" / name / filename / "sha512" / digest / filename
        served.parent.mkdir(parents=True)
        served.write_bytes(content + b"tampered" if tampered else content)
        make_repo(
            git_daemon.base / "rpms" / f"{name}.git",
            {
                f"{name}.spec": UNPACKED_SPEC.format(name=name, version="1.0"),
                "sources": f"SHA512 ({filename}) = {digest}\n",
            },
        )
    good = add_and_build(user, project, "dghello", "distgit", {"distgit": "local"})
    bad = add_and_build(user, project, "dgbad", "distgit", {"committish": "main"})
    assert_succeeded(good, "dghello", "1.0")
    assert failed_reason(bad).startswith("checksum mismatch for dgbad-1.0.tar.gz: 'sources' says")


# --- RubyGems ------------------------------------------------------------------------------


def test_rubygems_from_a_local_gem_server(worker, packager, served_directory, tmp_path, settings):
    user, _, project = packager
    directory, url = served_directory
    settings.RUBYGEMS_URL = url
    source = tmp_path / "gemsrc"
    (source / "lib").mkdir(parents=True)
    (source / "lib" / "tinygem.rb").write_text("module Tinygem; end\n")
    (source / "tinygem.gemspec").write_text(
        'Gem::Specification.new do |s|\n  s.name = "tinygem"\n  s.version = "0.3.1"\n'
        '  s.summary = "A tiny gem"\n  s.authors = ["Tester"]\n  s.license = "MIT"\n'
        '  s.files = ["lib/tinygem.rb"]\nend\n'
    )
    subprocess.run(["gem", "build", "tinygem.gemspec"], cwd=source, check=True, capture_output=True)
    (directory / "gems").mkdir()
    (directory / "gems" / "tinygem-0.3.1.gem").write_bytes(
        (source / "tinygem-0.3.1.gem").read_bytes()
    )
    (directory / "api/v1/gems").mkdir(parents=True)
    (directory / "api/v1/gems/tinygem.json").write_text(
        json.dumps({"name": "tinygem", "version": "0.3.1", "licenses": ["MIT"], "info": "Tiny"})
    )
    build = add_and_build(user, project, "tinygem", "rubygems", {"gem_name": "tinygem"})
    assert_succeeded(build, "rubygem-tinygem", "0.3.1")


# --- tito and PyPI: the builder-tools venv --------------------------------------------------


@pytest.fixture
def builder_tools(settings):
    """The tools venv the source tasks bind (made by `make test`; created here if missing)."""
    settings.BUILDER_TOOLS_DIR = builder_tools_dir(settings.BUILDER_TOOLS_DIR)
    return settings.BUILDER_TOOLS_DIR


def test_tito_builds_the_tag_and_tito_test_the_commit(worker, packager, git_daemon, builder_tools):
    user, _, project = packager
    _, newest = make_tito_repo(git_daemon.base / "titoed")
    url = git_daemon.url("titoed")
    released = add_and_build(
        user, project, "hello", "scm", {"clone_url": url, "srpm_build_method": "tito"}
    )
    released = assert_succeeded(released, "hello", "1.0")
    tested = build_submit(
        user=user,
        project=project,
        source_type="scm",
        source_json={"clone_url": url, "srpm_build_method": "tito_test"},
        options=X86,
    )
    tested = assert_succeeded(tested, "hello", "1.0")
    assert released.package_version == "1.0-1"
    assert tested.package_version == f"1.0-1.git.1.{newest[:7]}"


def test_pypi_makes_the_srpm_and_the_build_names_the_missing_fedora_macros(
    worker, packager, served_directory, builder_tools, settings
):
    user, _, project = packager
    directory, url = served_directory
    settings.PYPI_INDEX_URL = url
    publish(directory, url, "tinypkg", "0.3")
    build = add_and_build(user, project, "python-tinypkg", "pypi", {"pypi_package_name": "tinypkg"})
    build = finished_build(build.pk, timeout=180)
    source = source_task(build)
    assert (source.state, source.state_reason) == (State.SUCCEEDED, "")
    assert (build.package_name, build.package_version) == ("python-tinypkg", "0.3-1")
    rpm_task = build.tasks.get(chroot__name="fedora-43-x86_64")
    assert (build.state, rpm_task.state) == (State.FAILED, State.FAILED)
    assert rpm_task.state_reason.startswith(
        "the spec needs macros this builder does not have (Fedora's pyproject-rpm-macros, "
        "python-rpm-macros, rpmautospec): %autorelease, %pypi_source"
    )


@pytest.mark.skipif(shutil.which("svnserve") is None, reason="needs subversion and git-svn")
def test_svn_through_git_svn(worker, packager, tmp_path):
    user, _, project = packager
    (tmp_path / "svn").mkdir()
    server = SvnServer(tmp_path / "svn")
    server.start()
    try:
        make_svn_repo(tmp_path / "svn" / "hello", packed_files("svnhello", "3.1"), tmp_path / "w")
        source = {"type": "svn", "clone_url": server.url("hello")}
        build = add_and_build(user, project, "svnhello", "scm", source)
        assert_succeeded(build, "svnhello", "3.1")
    finally:
        server.stop()
