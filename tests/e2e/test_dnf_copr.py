"""Debian's dnf copr plugin, unmodified: `dnf copr enable <hub>/<owner>/<project>`, then install.

The hub is configured in a private plugin config dir (`--setopt=pluginconfpath=`), and the
repo file lands in a private reposdir, so the host's dnf setup is never touched.
"""

import html
import os
import re
import subprocess
import urllib.request
from urllib.parse import urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.builds.models import Build, State
from apps.builds.rpm_uploads import build_upload_rpm
from apps.builds.services import BuildOptions
from tests.e2e.conftest import wait_for
from tests.factories import ProjectFactory, UserFactory
from tests.repos.rpm_helpers import build_rpm, dnf_install_into

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
HUB = "coprsite-test"


@pytest.fixture
def dnf_dirs(tmp_path, live_server):
    """A plugin config dir naming our live server as a hub, and an empty reposdir."""
    plugins = tmp_path / "plugins"
    (plugins / "copr.d").mkdir(parents=True)
    url = urlsplit(live_server.url)
    (plugins / "copr.d" / f"{HUB}.conf").write_text(
        f"[{HUB}]\nhostname = {url.hostname}\nprotocol = http\nport = {url.port}\n"
    )
    reposdir = tmp_path / "yum.repos.d"
    reposdir.mkdir()
    return plugins, reposdir


def dnf_copr(dnf_dirs, *args: str) -> subprocess.CompletedProcess:
    plugins, reposdir = dnf_dirs
    return subprocess.run(
        [
            "dnf",
            f"--setopt=pluginconfpath={plugins}",
            f"--setopt=reposdir={reposdir}",
            "-y",
            "copr",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "LC_ALL": "C.UTF-8"},
        check=False,
    )


@pytest.fixture
def published_tool(worker, tmp_path):
    """alice/tools with the noarch package `tool` signed and published."""
    alice = UserFactory(username="alice")
    project = ProjectFactory(owner_user=alice, name="tools", chroot_names=["fedora-43-x86_64"])
    (rpm,) = build_rpm(tmp_path, name="tool", message="tool from dnf copr")
    build = build_upload_rpm(
        user=alice,
        project=project,
        upload=SimpleUploadedFile(rpm.name, rpm.read_bytes()),
        options=BuildOptions(),
    )
    wait_for(
        lambda: Build.objects.get(pk=build.pk).state == State.SUCCEEDED,
        timeout=120,
        what="the uploaded RPM to be published",
    )
    return project


def test_enable_writes_the_repo_file_and_dnf_installs_with_gpgcheck(
    published_tool, dnf_dirs, tmp_path, live_server
):
    result = dnf_copr(dnf_dirs, "enable", f"{HUB}/alice/tools", "fedora-43-x86_64")
    assert result.returncode == 0, result.stdout + result.stderr
    _, reposdir = dnf_dirs
    host = urlsplit(live_server.url).hostname
    repo_file = reposdir / f"_copr:{host}:alice:tools.repo"
    text = repo_file.read_text()
    assert f"[copr:{host}:alice:tools]" in text
    assert "gpgcheck=1" in text
    assert f"{live_server.url}/results/alice/tools/pubkey.gpg" in text

    installed = dnf_install_into(tmp_path / "root", reposdir, "tool")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    ran = subprocess.run(["sh", tmp_path / "root/usr/bin/tool"], capture_output=True, text=True)
    assert ran.stdout == "tool from dnf copr\n"


def test_enable_missing_chroot_lists_the_available_ones(published_tool, dnf_dirs):
    result = dnf_copr(dnf_dirs, "enable", f"{HUB}/alice/tools", "fedora-44-x86_64")
    assert result.returncode != 0
    assert "Repository 'fedora-44-x86_64' does not exist in project 'alice/tools'" in (
        result.stderr
    )
    assert "Available repositories: 'fedora-43-x86_64'" in result.stderr


def test_enable_unknown_project_says_so(published_tool, dnf_dirs):
    result = dnf_copr(dnf_dirs, "enable", f"{HUB}/alice/nothing", "fedora-43-x86_64")
    assert result.returncode != 0
    assert "Project alice/nothing does not exist." in result.stderr


def test_list_by_user_and_search_read_the_api(published_tool, dnf_dirs):
    listed = dnf_copr(dnf_dirs, "list", f"--hub={HUB}", "--available-by-user=alice")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "alice/tools" in listed.stdout
    found = dnf_copr(dnf_dirs, "search", f"--hub={HUB}", "tools")
    assert found.returncode == 0, found.stdout + found.stderr
    assert "alice/tools" in found.stdout


def test_hub_config_and_command_from_the_project_page_enable_and_install(
    published_tool, tmp_path, live_server
):
    """What a newcomer does: read the install box, save the hub config, paste the command."""
    page = urllib.request.urlopen(f"{live_server.url}/coprs/alice/tools/").read().decode()
    config_url = html.unescape(re.search(r'id="hub-config-link" href="([^"]+)"', page)[1])
    command = html.unescape(re.search(r'<pre id="enable-command">([^<]+)</pre>', page)[1])
    config_path = re.search(r"curl -o (\S+) ", page)[1]
    assert config_path.startswith("/etc/dnf/plugins/copr.d/") and config_path.endswith(".conf")
    hub = config_path.rsplit("/", 1)[1].removesuffix(".conf")
    assert command == f"dnf copr enable {hub}/alice/tools"

    # The file goes where the page says, under a private plugin config dir instead of /etc.
    plugins = tmp_path / "plugins"
    (plugins / "copr.d").mkdir(parents=True)
    (plugins / "copr.d" / f"{hub}.conf").write_bytes(urllib.request.urlopen(config_url).read())
    reposdir = tmp_path / "yum.repos.d"
    reposdir.mkdir()
    args = command.removeprefix("dnf copr ").split()
    result = dnf_copr((plugins, reposdir), *args, "fedora-43-x86_64")
    assert result.returncode == 0, result.stdout + result.stderr
    (repo_file,) = reposdir.glob("_copr:*alice:tools.repo")
    assert f"baseurl={live_server.url}/results/alice/tools/" in repo_file.read_text()

    installed = dnf_install_into(tmp_path / "root", reposdir, "tool")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    ran = subprocess.run(["sh", tmp_path / "root/usr/bin/tool"], capture_output=True, text=True)
    assert ran.stdout == "tool from dnf copr\n"
