"""The real copr-cli 2.6 from PyPI, unmodified, against the live server: every command we serve.

Each test runs copr-cli as a person would (a config file, a subprocess) and checks what the
command changed: rows, files, and what it printed.
"""

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import requests
from django.conf import settings

from apps.accounts.models import ApiToken
from apps.accounts.services import api_token_regenerate
from apps.builds.models import Build, BuildTask, State
from apps.packages.models import Package
from apps.projects.models import PermissionLevel, Project, ProjectChroot, ProjectPermission
from tests.builders.srpm_factory import make_srpm
from tests.builders.test_mockconfig import dnf_repos, load_mock_config
from tests.e2e.conftest import finished_build, wait_for
from tests.factories import ProjectFactory, UserFactory, chroot
from tests.repos.rpm_helpers import build_rpm, dnf_install_into

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
COPR_CLI = str(Path(sys.executable).with_name("copr-cli"))
X86 = "fedora-43-x86_64"


def write_config(path: Path, *, url: str, username: str, login: str, token: str) -> Path:
    path.write_text(
        "[copr-cli]\n"
        f"login = {login}\n"
        f"username = {username}\n"
        f"token = {token}\n"
        f"copr_url = {url}\n"
        "encrypted = False\n"
        "# expiration date: 2000-01-01\n"
    )
    return path


class CoprCli:
    """Runs copr-cli with its own config file and HOME, like a packager's shell."""

    def __init__(self, home: Path, config: Path) -> None:
        self.home = home
        self.config = config

    def __call__(self, *args: str, ok: bool = True, stdin: str | None = None, timeout=120):
        result = subprocess.run(
            [COPR_CLI, "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            input=stdin,
            timeout=timeout,
            cwd=self.home,
            env={"HOME": str(self.home), "PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"},
        )
        if ok:
            assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
        return result


def cli_for(live_server, tmp_path: Path, user) -> CoprCli:
    token = api_token_regenerate(user=user)
    home = tmp_path / f"home-{user.username}"
    home.mkdir(exist_ok=True)
    config = write_config(
        home / "copr.conf",
        url=live_server.url,
        username=user.username,
        login=token.login,
        token=token.token,
    )
    return CoprCli(home, config)


@pytest.fixture
def alice(e2e_settings, transactional_db):
    chroot()  # transactional tests flush the chroot catalog; put it back
    return UserFactory(username="alice")


@pytest.fixture
def cli(live_server, tmp_path, alice) -> CoprCli:
    return cli_for(live_server, tmp_path, alice)


@pytest.fixture
def tools(alice):
    return ProjectFactory(owner_user=alice, name="tools", chroot_names=[X86, "fedora-43-aarch64"])


def created_build_id(output: str) -> int:
    line = next(line for line in output.splitlines() if line.startswith("Created builds:"))
    return int(line.split(":")[1].split()[0])


# --- projects -----------------------------------------------------------------------------


def test_create_get_list_modify_delete(cli, alice):
    created = cli(
        "create", "hello", "--chroot", X86, "--chroot", "fedora-44-x86_64",
        "--description", "Hello tools", "--repo", "https://example.org/repo/",
    )  # fmt: skip
    assert "New project was successfully created" in created.stdout
    project = Project.objects.get(owner_user=alice, name="hello")
    assert project.description == "Hello tools"
    assert project.additional_repos == ["https://example.org/repo/"]
    assert sorted(project.chroots.values_list("name", flat=True)) == [X86, "fedora-44-x86_64"]

    shown = cli("get", "alice/hello").stdout
    assert "Name: hello" in shown and "Description: Hello tools" in shown
    assert f"/results/alice/hello/{X86}/" in shown

    cli("modify", "hello", "--description", "Changed", "--chroot", X86, "--multilib", "on")
    project.refresh_from_db()
    assert project.description == "Changed" and project.multilib
    assert list(project.chroots.values_list("name", flat=True)) == [X86]

    listed = cli("list").stdout
    assert "Name: hello" in listed and "Description: Changed" in listed

    deleted = cli("delete", "hello")
    assert "Project hello has been deleted." in deleted.stdout
    assert not Project.objects.filter(name="hello").exists()


def test_create_twice_is_a_clear_error(cli, tools):
    result = cli("create", "tools", "--chroot", X86, ok=False)
    assert result.returncode == 1
    assert "You already have a project named 'tools'" in result.stderr


def error_lines(stderr: str) -> list[str]:
    """What copr-cli printed after `Error:`: the field lines, when several fields failed."""
    lines = stderr.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Error:"))
    if lines[start].strip() != "Error:":  # one field: on the same line, as with Copr
        return [lines[start].removeprefix("Error: ")]
    return [line for line in lines[start + 1 :] if line]


def test_form_errors_are_printed_one_line_per_field(cli, tools):
    created = cli("create", "..", "--chroot", "nope-1-x86_64", "--chroot", X86, ok=False)
    assert created.returncode == 1
    assert sorted(error_lines(created.stderr)) == [
        "- chroots: 'nope-1-x86_64' is not a valid choice for this field",
        "- name: '..' is not a valid project name.",
    ]
    twice = cli("create", "tools", "--chroot", X86, "--enable-net", "on", ok=False)
    assert error_lines(twice.stderr) == ["name: You already have a project named 'tools'."]
    modified = cli("modify", "tools", "--repo", "file:///etc", "--chroot", "nope-1-x86_64",
                   ok=False)  # fmt: skip
    assert sorted(error_lines(modified.stderr)) == [
        "- additional_repos: 'file:///etc' is not a repository URL: "
        "use http://, https:// or copr://owner/project.",
        "- chroots: 'nope-1-x86_64' is not a valid choice for this field",
    ]
    reset = cli("edit-chroot", f"alice/tools/{X86}", "--reset", "nonsense", ok=False)
    assert error_lines(reset.stderr) == [
        "- Trying to reset an invalid attribute: nonsense",
        f"- See `copr-cli get-chroot alice/tools/{X86}' for all the possible attributes",
    ]
    package = cli("add-package-scm", "tools", "--name", "p" * 101, "--clone-url", "nope",
                  ok=False)  # fmt: skip
    assert error_lines(package.stderr) == [
        "- package_name: Too long package name",
        "- clone_url: clone_url must be a remote repository URL "
        "(http, https, git, ssh, svn, svn+ssh), not 'nope'.",
    ]
    assert list(Project.objects.values_list("name", flat=True)) == ["tools"]
    assert not Package.objects.exists()


def test_regenerate_repos_runs_createrepo(cli, tools):
    result = cli("regenerate-repos", "tools")
    assert "regenerate repository metadata for the 'alice/tools' project" in result.stdout
    assert tools.repositories.filter(chroot__name=X86, requested_serial__gte=1).exists()


def test_fork_copies_project_packages_and_settings(cli, alice, tools, live_server, tmp_path):
    Package.objects.create(
        project=tools,
        name="hello",
        source_type="pypi",
        source_json={"pypi_package_name": "hello"},
        webhook_rebuild=True,
    )
    bob = UserFactory(username="bob")
    bob_cli = cli_for(live_server, tmp_path, bob)
    result = bob_cli("fork", "alice/tools", "bob/tools-fork")
    assert "Forking project alice/tools for you into bob/tools-fork" in result.stdout
    fork = Project.objects.get(owner_user=bob, name="tools-fork")
    assert fork.forked_from == tools
    assert sorted(fork.chroots.values_list("name", flat=True)) == sorted(
        tools.chroots.values_list("name", flat=True)
    )
    package = fork.packages.get(name="hello")
    assert package.source_type == "pypi" and not package.webhook_rebuild

    again = bob_cli("fork", "alice/tools", "bob/tools-fork", ok=False)
    assert "Please use --confirm" in again.stderr
    assert (
        "Updating packages" in bob_cli("fork", "--confirm", "alice/tools", "bob/tools-fork").stdout
    )


def test_list_chroots_get_chroot_edit_chroot_mock_config(cli, tools, tmp_path):
    assert X86 in cli("list-chroots").stdout.split()
    comps = tmp_path / "comps.xml"
    comps.write_text("<comps></comps>\n")
    edited = cli(
        "edit-chroot", f"tools/{X86}", "--packages", "make gcc",
        "--repos", "https://example.org/extra/", "--rpmbuild-with", "docs",
        "--isolation", "simple", "--upload-comps", str(comps),
    )  # fmt: skip
    assert "Edit chroot operation was successful." in edited.stdout
    chroot = ProjectChroot.objects.get(project=tools, chroot__name=X86)
    assert chroot.additional_packages == ["make", "gcc"]
    assert chroot.additional_repos == ["https://example.org/extra/"]
    assert chroot.with_opts == ["docs"] and chroot.isolation == "simple"
    assert chroot.comps_name == "comps.xml" and "<comps>" in chroot.comps

    shown = json.loads(cli("get-chroot", f"alice/tools/{X86}", "--output-format", "json").stdout)
    assert shown["additional_packages"] == ["make", "gcc"]
    assert shown["mock_chroot"] == X86

    mock = cli("mock-config", "alice/tools", X86).stdout
    assert f"include('/etc/mock/{X86}.cfg')" in mock
    assert "config_opts['chroot_additional_packages'] = 'make gcc'" in mock
    assert f"/results/alice/tools/{X86}/" in mock
    assert "https://example.org/extra/" in mock
    assert "config_opts['isolation'] = 'simple'" in mock
    assert "use_bootstrap" not in mock  # the project's `default` bootstrap: mock's own


def test_unknown_chroot_and_project_messages(cli, tools):
    result = cli("get-chroot", "alice/tools/fedora-1-x86_64", ok=False)
    assert result.returncode == 1
    assert "Chroot fedora-1-x86_64 does not exist" in result.stderr
    result = cli("get", "alice/nothing", ok=False)
    assert "Project alice/nothing does not exist." in result.stderr


# --- permissions, webhooks, tokens --------------------------------------------------------


def test_permissions_request_edit_list(cli, alice, tools, live_server, tmp_path):
    bob = UserFactory(username="bob")
    bob_cli = cli_for(live_server, tmp_path, bob)
    assert bob_cli("request-permissions", "alice/tools", "--builder").stdout.strip() == "success"
    permission = ProjectPermission.objects.get(project=tools, user=bob)
    assert permission.builder == PermissionLevel.REQUEST

    denied = bob_cli("edit-permissions", "alice/tools", "--admin", "bob=approved", ok=False)
    assert "not allowed to change permissions of alice/tools" in denied.stderr

    cli("edit-permissions", "tools", "--builder", "bob=approved")
    permission.refresh_from_db()
    assert permission.builder == PermissionLevel.APPROVED
    listed = cli("list-permissions", "tools").stdout
    assert "bob:\n  admin: nothing\n  builder: approved" in listed

    refused = bob_cli("request-permissions", "alice/tools", "--builder", ok=False)
    assert "already are builder" in refused.stderr


def test_new_webhook_secret(cli, tools):
    old = tools.webhook_secret
    result = cli("new-webhook-secret", "tools", stdin="y\n")
    tools.refresh_from_db()
    assert tools.webhook_secret != old
    assert f"Generated new token: {tools.webhook_secret}" in result.stdout


def test_new_api_token_rewrites_the_config(cli, alice):
    old_login = ApiToken.objects.get(user=alice).login
    result = cli("new-api-token")
    assert "New API token was updated" in result.stdout
    new_login = ApiToken.objects.get(user=alice).login
    assert new_login != old_login
    text = cli.config.read_text()
    assert f"login = {new_login}" in text
    assert "# expiration date: 2000-01-01" not in text
    assert cli("whoami").stdout.strip() == "alice"
    assert "Name:" not in cli("list").stderr  # the new token works


def test_wrong_token_tells_the_user_to_renew_it(cli, alice):
    cli.config.write_text(cli.config.read_text().replace("token = ", "token = wrong"))
    result = cli("create", "nope", "--chroot", X86, ok=False)
    assert result.returncode == 1
    assert "Login invalid/expired. Please visit" in result.stderr
    assert "/api to get or renew your API token." in result.stderr
    assert not Project.objects.filter(name="nope").exists()


def test_no_permission_to_build(live_server, tmp_path, tools, e2e_settings):
    mallory = cli_for(live_server, tmp_path, UserFactory(username="mallory"))
    srpm = make_srpm(tmp_path, name="hello")
    result = mallory("build", "--nowait", "alice/tools", str(srpm), ok=False)
    assert result.returncode == 7  # copr-cli's exit code for a 403
    assert "Operation requires API authentication" in result.stderr
    assert "not allowed to build in the project alice/tools" in result.stderr
    assert not Build.objects.exists()


def test_build_for_an_arch_no_builder_serves_is_refused_at_once(cli, tools, tmp_path):
    """The local pool builds x86_64 only: an aarch64 build would wait forever, so it is refused."""
    assert "fedora-43-aarch64" in cli("list-chroots").stdout.split()
    srpm = make_srpm(tmp_path, name="hello")
    result = cli("build", "-r", "fedora-43-aarch64", "tools", str(srpm), ok=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "No builder serves the architecture aarch64 (fedora-43-aarch64)" in result.stderr
    assert not Build.objects.exists()


# --- packages -----------------------------------------------------------------------------


def test_packages_add_edit_list_get_reset_build_delete(cli, tools, tmp_path):
    cli("add-package-scm", "tools", "--name", "hello",
        "--clone-url", "https://example.org/hello.git", "--commit", "main")  # fmt: skip
    cli("add-package-pypi", "tools", "--name", "python-six", "--packagename", "six")
    cli("add-package-rubygems", "tools", "--name", "rubygem-rake", "--gem", "rake")
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho custom\n")
    cli("add-package-custom", "tools", "--name", "custom", "--script", str(script),
        "--script-chroot", X86)  # fmt: skip
    scm = Package.objects.get(project=tools, name="hello")
    assert scm.source_type == "scm"
    assert scm.source_json["clone_url"] == "https://example.org/hello.git"
    assert scm.source_json["committish"] == "main"
    assert scm.source_json["srpm_build_method"] == "rpkg"
    pypi = Package.objects.get(project=tools, name="python-six")
    assert pypi.source_json["pypi_package_name"] == "six"
    custom = Package.objects.get(project=tools, name="custom")
    assert custom.source_json["script"] == "#!/bin/sh\necho custom\n"
    assert custom.source_json["chroot"] == X86

    cli("edit-package-scm", "tools", "--name", "hello", "--subdir", "pkg", "--max-builds", "5",
        "--clone-url", "https://example.org/hello2.git")  # fmt: skip
    scm.refresh_from_db()
    assert scm.source_json["subdirectory"] == "pkg" and scm.max_builds == 5
    assert scm.source_json["clone_url"] == "https://example.org/hello2.git"

    names = cli("list-package-names", "tools").stdout.split()
    assert names == ["hello", "python-six", "rubygem-rake", "custom"]  # id order, as Copr
    listed = json.loads(cli("list-packages", "tools").stdout)
    assert {p["name"] for p in listed} == set(names)
    got = json.loads(cli("get-package", "tools", "--name", "hello").stdout)
    assert got["source_type"] == "scm"
    assert got["source_dict"]["source_build_method"] == "rpkg"

    built = cli("build-package", "tools", "--name", "hello", "--nowait", "-r", X86)
    build = Build.objects.get(pk=created_build_id(built.stdout))
    assert build.source_type == "scm" and build.package == scm
    assert build.requested_chroots == [X86]
    assert f"/coprs/build/{build.pk}" in built.stdout
    cli("cancel", str(build.pk))

    assert "successfully reseted" in cli("reset-package", "tools", "--name", "hello").stdout
    scm.refresh_from_db()
    assert scm.source_type == "unset" and scm.source_json == {}
    unbuildable = cli("build-package", "tools", "--name", "hello", "--nowait", ok=False)
    assert "has no source" in unbuildable.stderr

    cli("delete-package", "tools", "--name", "python-six")
    assert not Package.objects.filter(name="python-six").exists()
    missing = cli("get-package", "tools", "--name", "python-six", ok=False)
    assert "No package with name python-six in copr tools" in missing.stderr


def test_add_package_with_bad_source_creates_nothing(cli, tools):
    result = cli("add-package-scm", "tools", "--name", "bad", "--clone-url", "not a url",
                 ok=False)  # fmt: skip
    assert result.returncode == 1
    assert "clone_url" in result.stderr
    assert not Package.objects.filter(name="bad").exists()


# --- builds that really run ---------------------------------------------------------------


def test_build_status_watch_list_download_monitor_fork_delete(
    cli, worker, tools, tmp_path, live_server
):
    srpm = make_srpm(tmp_path, name="hello", auto_req_prov=False)
    submitted = cli("build", "--nowait", "-r", X86, "tools", str(srpm))
    assert "Build was added to tools" in submitted.stdout
    build_id = created_build_id(submitted.stdout)
    wait_for(
        lambda: cli("status", str(build_id)).stdout.strip() in ("succeeded", "failed"),
        interval=2,
        what="copr-cli status to report the build finished",
    )
    build = Build.objects.get(pk=build_id)
    assert build.state == State.SUCCEEDED, list(build.tasks.values("state", "state_reason"))

    watched = cli("watch-build", str(build_id))
    assert f"Build {build_id}: succeeded" in watched.stdout

    rows = cli("list-builds", "tools").stdout.splitlines()
    assert f"{build_id}\thello\tsucceeded" in rows

    target = tmp_path / "downloaded"
    cli("download-build", str(build_id), "--dest", str(target), timeout=180)
    rpms = sorted(p.name for p in (target / X86).glob("*.rpm"))
    assert "hello-1.0-1.x86_64.rpm" in [name.replace(".fc43", "") for name in rpms]

    monitor = json.loads(cli("monitor", "tools", "--output-format", "json").stdout)
    assert {"name": "hello", "chroot": X86, "build_id": build_id, "state": "succeeded",
            "pkg_version": "1.0-1"}.items() <= monitor[0].items()  # fmt: skip

    cli("fork", "tools", "tools-fork")
    fork = Project.objects.get(name="tools-fork")
    forked = Build.objects.get(project=fork)
    assert forked.state == State.FORKED
    forked_task = forked.tasks.get(chroot__name=X86)
    # The sign queue copies and re-signs the RPMs after the request; the task ends then.
    wait_for(
        lambda: BuildTask.objects.filter(pk=forked_task.pk, ended_on__isnull=False).exists(),
        what="the fork's RPMs to be copied",
    )
    fork_dir = Path(settings.RESULTS_ROOT) / "alice/tools-fork" / forked_task.result_dir
    # Directory order is the file system's: compare as sets.
    assert sorted(p.name for p in fork_dir.glob("*.rpm")) == sorted(forked_task.result_files)

    deleted = cli("delete-build", str(build_id))
    assert f"Build(s) {build_id} were deleted." in deleted.stdout
    assert not Build.objects.filter(pk=build_id).exists()
    missing = cli("status", str(build_id), ok=False)
    assert f"Build {build_id} does not exist." in missing.stderr


def test_build_isolation_and_bootstrap_reach_the_builder(
    cli, worker, alice, tools, tmp_path, live_server
):
    ProjectFactory(owner_user=alice, name="lib", module_hotfixes=True, chroot_names=[X86])
    tools.additional_repos = ["copr://alice/lib"]
    tools.save()
    srpm = make_srpm(tmp_path, name="hello", auto_req_prov=False)
    submitted = cli(
        "build", "--nowait", "-r", X86, "--isolation", "simple", "--bootstrap", "off",
        "tools", str(srpm),
    )  # fmt: skip
    build = finished_build(created_build_id(submitted.stdout))
    assert build.state == State.SUCCEEDED, list(build.tasks.values("state", "state_reason"))

    # What Copr's backend reads of the task...
    record = requests.get(f"{live_server.url}/backend/get-build-task/{build.pk}-{X86}/", timeout=30)
    record = record.json()
    assert (record["isolation"], record["bootstrap"]) == ("simple", "off")
    lib = next(repo for repo in record["repos"] if repo["id"] == "copr_alice_lib")
    assert lib["module_hotfixes"] is True
    # ...and the mock configuration the builder wrote, as mock reads it.
    task = build.tasks.get(chroot__name=X86)
    configs = Path(settings.RESULTS_ROOT) / "alice/tools" / task.result_dir / "configs.tar.gz"
    with tarfile.open(configs) as archive:
        child = archive.extractfile("configs/child.cfg").read().decode()
    config_opts, included = load_mock_config(child)
    assert included == [f"/etc/mock/{X86}.cfg"]
    assert config_opts["isolation"] == "simple" and config_opts["use_bootstrap"] is False
    assert config_opts["macros"]["%copr_username"] == "alice"
    assert dnf_repos(config_opts)["copr_alice_lib"]["module_hotfixes"] == "1"


def test_build_from_url_and_cancel(cli, worker, tools, tmp_path, served_directory):
    directory, base_url = served_directory
    srpm = make_srpm(tmp_path, name="slow", build_script="sleep 300; gcc -o slow hello.c")
    (directory / srpm.name).write_bytes(srpm.read_bytes())
    submitted = cli("build", "--nowait", "-r", X86, "tools", f"{base_url}/{srpm.name}")
    build_id = created_build_id(submitted.stdout)
    assert Build.objects.get(pk=build_id).source_json == {"url": f"{base_url}/{srpm.name}"}
    wait_for(
        lambda: BuildTask.objects.filter(
            build_id=build_id, chroot__isnull=False, state=State.RUNNING
        ).exists(),  # fmt: skip
        what="the RPM task to run",
    )
    assert cli("cancel", str(build_id)).stdout.strip() == "canceled"
    assert finished_build(build_id, timeout=60).state == State.CANCELED
    again = cli("cancel", str(build_id), ok=False)
    assert f"Cannot cancel build {build_id}" in again.stderr
    watched = cli("watch-build", str(build_id), ok=False)
    assert watched.returncode == 4 and f"Build(s) {build_id} canceled." in watched.stderr


def test_uploadrpm_publishes_a_signed_installable_rpm(cli, worker, tools, tmp_path, live_server):
    (rpm,) = build_rpm(tmp_path, name="tool", message="tool from uploadrpm")
    submitted = cli("uploadrpm", "--nowait", "tools", str(rpm))
    build = finished_build(created_build_id(submitted.stdout), timeout=120)
    assert build.state == State.SUCCEEDED, list(build.tasks.values("state", "state_reason"))
    assert sorted(build.tasks.values_list("chroot__name", flat=True)) == [
        "fedora-43-aarch64",
        X86,
    ]
    repo = subprocess.run(
        ["curl", "-sf", f"{live_server.url}/coprs/alice/tools/repo/fedora-43/dnf.repo?arch=x86_64"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    reposdir = tmp_path / "repos"
    reposdir.mkdir()
    (reposdir / "tools.repo").write_text(repo)
    result = dnf_install_into(tmp_path / "root", reposdir, "tool")
    assert result.returncode == 0, result.stdout + result.stderr
    ran = subprocess.run(["sh", tmp_path / "root/usr/bin/tool"], capture_output=True, text=True)
    assert ran.stdout == "tool from uploadrpm\n"


def test_uploadrpm_refuses_source_rpms(cli, tools, tmp_path):
    srpm = make_srpm(tmp_path, name="hello")
    result = cli("uploadrpm", "--nowait", "tools", str(srpm), ok=False)
    assert result.returncode == 1
    assert "uploadrpm takes a built .rpm" in result.stderr
    assert not Build.objects.exists()
