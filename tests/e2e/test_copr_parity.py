"""Copr behaviours that scripts rely on, driven with the real copr-cli 2.6 against the live
server: the chroot catalog, SCM commits, mock-config."""

import gzip
import re
from pathlib import Path

import pytest
from django.conf import settings

from apps.builds.models import Build, State
from apps.projects.models import Project, ProjectChroot
from tests.builders.scm_helpers import commit, git, make_repo, packed_files
from tests.builders.srpm_factory import make_srpm
from tests.e2e.conftest import finished_build, wait_for
from tests.e2e.test_copr_cli import X86, cli_for, created_build_id
from tests.factories import ProjectFactory, UserFactory, chroot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
EOL_EPEL = "epel-7-x86_64"


@pytest.fixture
def alice(e2e_settings, transactional_db):
    chroot()  # transactional tests flush the chroot catalog; put it back
    return UserFactory(username="alice")


@pytest.fixture
def cli(live_server, tmp_path, alice):
    return cli_for(live_server, tmp_path, alice)


def test_catalog_has_i386_and_the_eol_epels_as_copr_has_them(cli, alice, settings):
    settings.SUBMIT_CHECK_URLS = False
    listed = cli("list-chroots").stdout.split()
    assert "fedora-43-i386" in listed and "fedora-rawhide-i386" in listed
    assert EOL_EPEL not in listed and "epel-6-i386" not in listed  # EOL: not offered

    refused = cli("create", "old", "--chroot", EOL_EPEL, ok=False)
    assert refused.returncode != 0 and EOL_EPEL in refused.stderr
    assert not Project.objects.filter(name="old").exists()

    # A project that built for EPEL 7 before its end of life keeps the chroot, but new
    # builds for it are refused; its other chroots still build.
    legacy = ProjectFactory(owner_user=alice, name="legacy", chroot_names=[X86])
    ProjectChroot.objects.create(project=legacy, chroot=chroot(EOL_EPEL))
    url = "https://example.org/hello-1.0-1.src.rpm"
    refused = cli("build", "legacy", url, "-r", EOL_EPEL, "--nowait", ok=False)
    assert refused.returncode != 0 and EOL_EPEL in refused.stderr
    assert not Build.objects.exists()
    built = cli("build", "legacy", url, "--nowait")
    assert "Created builds" in built.stdout
    assert Build.objects.get().requested_chroots == [X86]

    # Choosing the project's chroots again cannot untick one that is no longer offered.
    cli("modify", "legacy", "--chroot", X86, "--chroot", "fedora-43-i386")
    enabled = legacy.project_chroots.values_list("chroot__name", flat=True)
    assert sorted(enabled) == [EOL_EPEL, "fedora-43-i386", X86]


def test_a_new_project_has_repodata_before_its_first_build(cli, worker, settings):
    """A script that waits for repodata/repomd.xml of a new project finds it (main, and
    devel/ in devel mode), as with Copr; a chroot added later gets its own."""
    cli("create", "fresh", "--chroot", X86, "--disable_createrepo", "true")
    chroot_dir = Path(settings.RESULTS_ROOT) / "alice" / "fresh" / X86
    for repodata in (chroot_dir, chroot_dir / "devel"):
        wait_for((repodata / "repodata" / "repomd.xml").is_file, timeout=60, what="repodata")
    assert listed_packages(chroot_dir) == set()
    cli("modify", "fresh", "--chroot", X86, "--chroot", "fedora-43-i386")
    added = chroot_dir.parent / "fedora-43-i386" / "repodata" / "repomd.xml"
    wait_for(added.is_file, timeout=60, what="the added chroot's repodata")


def test_buildscm_commit_takes_a_branch_of_the_remote(cli, alice, worker, git_daemon):
    repo = make_repo(git_daemon.base / "hello", packed_files(version="1.0"))
    git(repo, "checkout", "--quiet", "-b", "some-branch")
    commit(repo, packed_files(version="2.0"))
    git(repo, "checkout", "--quiet", "main")
    ProjectFactory(owner_user=alice, name="tools", chroot_names=[X86])

    submitted = cli(
        "buildscm", "tools", "--clone-url", git_daemon.url("hello"),
        "--commit", "some-branch", "--spec", "hello.spec", "--nowait",
    )  # fmt: skip
    build = finished_build(created_build_id(submitted.stdout))
    assert build.state == State.SUCCEEDED, list(build.tasks.values("state_reason"))
    assert build.package_version == "2.0-1"


COPR_NAMED_SPEC = """\
Name: %{copr_username}-%{copr_projectname}-{suffix}
Version: 1.0
Release: 1%{?dist}
Summary: Named after its Copr project
License: MIT
BuildArch: noarch

%description
Built in %{copr_username}/%{copr_projectname}.

%install
mkdir -p %{buildroot}%{_datadir}/%{name}
echo '%{vendor}' > %{buildroot}%{_datadir}/%{name}/vendor

%files
%{_datadir}/%{name}/vendor
"""


def test_copr_macros_are_defined_when_the_srpm_is_made(cli, alice, worker, git_daemon, tmp_path):
    ProjectFactory(owner_user=alice, name="tools", chroot_names=[X86])
    spec = tmp_path / "named.spec"
    spec.write_text(COPR_NAMED_SPEC.replace("{suffix}", "spec"))
    uploaded = cli("build", "tools", str(spec), "--nowait")

    # A .copr/Makefile runs rpmbuild itself: the macros reach it as well.
    makefile = (
        "srpm:\n"
        '\trpmbuild -bs $(spec) --define "_sourcedir $$(pwd)" --define "_srcrpmdir $(outdir)"\n'
    )
    named = COPR_NAMED_SPEC.replace("{suffix}", "made")
    make_repo(git_daemon.base / "made", {"named.spec": named, ".copr/Makefile": makefile})
    made = cli(
        "buildscm", "tools", "--clone-url", git_daemon.url("made"), "--spec", "named.spec",
        "--method", "make_srpm", "--nowait",
    )  # fmt: skip

    for output, name in ((uploaded, "alice-tools-spec"), (made, "alice-tools-made")):
        build = finished_build(created_build_id(output.stdout))
        assert build.state == State.SUCCEEDED, list(build.tasks.values("state_reason"))
        assert build.package_name == name
        task = build.tasks.get(chroot__name=X86)
        assert {package["name"] for package in task.built_packages} == {name}


def test_mock_config_expands_copr_repositories(cli, alice, live_server):
    tools = ProjectFactory(
        owner_user=alice, name="tools", chroot_names=[X86], additional_repos=["copr://bob/lib"]
    )
    ProjectChroot.objects.filter(project=tools).update(
        additional_repos=["copr://@packagers/base", "https://example.org/$chroot/?priority=5"]
    )

    mock = cli("mock-config", "alice/tools", X86).stdout

    results = f"{live_server.url}/results"
    assert "copr://" not in mock
    assert f'[copr_base]\nname="Copr repository"\nbaseurl={results}/alice/tools/{X86}/\n' in mock
    assert (
        f'[copr_bob_lib]\nname="Additional repo copr_bob_lib"\nbaseurl={results}/bob/lib/{X86}/\n'
        in mock
    )
    assert f"baseurl={results}/@packagers/base/{X86}/\n" in mock
    assert f"baseurl=https://example.org/{X86}/\npriority=5\n" in mock


def test_devel_mode_publishes_into_devel_until_regenerate_repos(cli, alice, worker, tmp_path):
    cli("create", "tools", "--chroot", X86, "--disable_createrepo", "true")
    assert Project.objects.get(owner_user=alice, name="tools").devel_mode
    srpm = make_srpm(tmp_path, name="hello", auto_req_prov=False)

    build = finished_build(created_build_id(cli("build", "tools", str(srpm), "--nowait").stdout))

    assert build.state == State.SUCCEEDED, list(build.tasks.values("state_reason"))
    chroot_dir = Path(settings.RESULTS_ROOT) / "alice" / "tools" / X86
    assert listed_packages(chroot_dir / "devel") == {"hello"}  # later builds see it
    assert listed_packages(chroot_dir) == set()  # users do not, yet
    task = build.tasks.get(chroot__name=X86)
    assert (chroot_dir / task.result_dir.split("/", 1)[1]).is_dir()  # in the chroot dir
    mock = cli("mock-config", "alice/tools", X86).stdout
    assert f"/results/alice/tools/{X86}/devel/" in mock  # builds install from devel/

    cli("regenerate-repos", "tools")
    wait_for(lambda: listed_packages(chroot_dir) == {"hello"}, what="the main repodata")

    # Out of devel mode, builds are published into the main repodata at once.
    cli("modify", "tools", "--disable_createrepo", "false")
    other = make_srpm(tmp_path, name="other", auto_req_prov=False)
    build = finished_build(created_build_id(cli("build", "tools", str(other), "--nowait").stdout))
    assert build.state == State.SUCCEEDED
    assert listed_packages(chroot_dir) == {"hello", "other"}


def listed_packages(repo_dir: Path) -> set[str]:
    """Binary package names a repository's primary metadata lists (empty if none yet)."""
    repomd = repo_dir / "repodata" / "repomd.xml"
    if not repomd.is_file():
        return set()
    text = repomd.read_text()
    primary = re.search(r'<location href="(repodata/[^"]*primary\.xml\.gz)"', text).group(1)
    with gzip.open(repo_dir / primary, "rt") as handle:
        packages = re.findall(r"<name>([^<]+)</name>\s*<arch>([^<]+)</arch>", handle.read())
    return {name for name, arch in packages if arch != "src"}
