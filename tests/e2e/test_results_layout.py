"""The results directory as Copr lays it out, read over HTTP the way packagers and scripts do."""

import gzip
import io
import subprocess
import tarfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
import requests

from apps.builds.models import State
from tests.builders.srpm_factory import make_srpm
from tests.e2e.conftest import finished_build
from tests.e2e.test_copr_cli import cli_for, created_build_id
from tests.e2e.test_pipeline import install_from_served_repo, submit_upload
from tests.repos.rpm_helpers import dnf_install_into

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_finished_build_has_copr_results_layout(live_server, worker, packager, tmp_path):
    _, token, _ = packager
    srpm = make_srpm(tmp_path, name="hello", auto_req_prov=False)
    build = finished_build(submit_upload(live_server, token, srpm))
    assert build.state == State.SUCCEEDED, list(build.tasks.values("state", "state_reason"))
    task = build.tasks.get(chroot__name="fedora-43-x86_64")
    base = f"{live_server.url}/results/packager/tools/{task.result_dir}/"
    index = requests.get(base, timeout=30).text
    for name in ("builder-live.log.gz", "backend.log.gz", "build.log.gz", "root.log.gz"):
        assert f'href="./{name}"' in index, index
        stored = requests.get(base + name, headers={"Accept-Encoding": "identity"}, timeout=30)
        assert stored.status_code == 200 and stored.headers["Content-Encoding"] == "gzip"
    for plain in ("builder-live.log", "backend.log", "build.log", "root.log"):
        assert f'href="./{plain}"' not in index  # stored compressed only

    # The live log's URL keeps answering with the text, whole or from an offset.
    live = requests.get(base + "builder-live.log", timeout=30)
    assert live.status_code == 200 and "Finished: succeeded" in live.text
    raw = requests.get(
        base + "builder-live.log",
        headers={"Accept-Encoding": "identity", "Range": "bytes=5-"},
        timeout=30,
    )
    assert raw.status_code == 206 and raw.content == live.content[5:]

    backend = requests.get(base + "backend.log.gz", timeout=30).text
    assert "runner ended: succeeded" in backend and "published in the fedora-43-x86_64" in backend
    build_log = requests.get(base + "build.log.gz", timeout=30).text
    assert "gcc -o hello hello.c" in build_log and "Finished: succeeded" not in build_log
    root_log = requests.get(base + "root.log.gz", timeout=30).text
    assert "NOT a mock chroot" in root_log and "RPM version" in root_log
    spec = requests.get(base + "hello.spec", timeout=30)
    assert spec.status_code == 200 and spec.text.startswith("Name: hello")
    configs = requests.get(base + "configs.tar.gz", timeout=30)
    with tarfile.open(fileobj=io.BytesIO(configs.content)) as archive:
        names = archive.getnames()
        job_macros = archive.extractfile("configs/job.macros").read().decode()
    assert "configs/buildroot.macros" in names and "configs/child.cfg" in names
    assert "%copr_username packager" in job_macros and "%dist .fc43" in job_macros

    # The build page links the compressed logs, as Copr's does, and they open.
    page = requests.get(f"{live_server.url}/builds/{build.pk}/", timeout=30).text
    assert f"{task.result_dir}/builder-live.log.gz" in page
    source = build.tasks.get(chroot=None)
    source_base = f"{live_server.url}/results/packager/tools/{source.result_dir}/"
    assert requests.get(source_base + "hello.spec", timeout=30).status_code == 200
    source_log = requests.get(source_base + "builder-live.log.gz", timeout=30)
    assert "Source RPM hello-1.0-1" in source_log.text


def test_compiled_package_gets_signed_debuginfo_and_debugsource(
    live_server, worker, packager, tmp_path
):
    _, token, _ = packager
    srpm = make_srpm(
        tmp_path,
        name="hello",
        setup=True,
        build_script="gcc -g -O2 -o %{name} hello.c",
        auto_req_prov=False,
    )
    build = finished_build(submit_upload(live_server, token, srpm))
    assert build.state == State.SUCCEEDED, list(build.tasks.values("state", "state_reason"))
    task = build.tasks.get(chroot__name="fedora-43-x86_64")
    base = f"{live_server.url}/results/packager/tools/{task.result_dir}/"
    listed = requests.get(base + "results.json", timeout=30).json()["packages"]
    assert sorted(package["name"] for package in listed if package["arch"] == "x86_64") == [
        "hello",
        "hello-debuginfo",
        "hello-debugsource",
    ]

    # dnf installs them from the served repository with gpgcheck=1: signed and published.
    result, installroot = install_from_served_repo(live_server, tmp_path, "hello-debuginfo")
    assert result.returncode == 0, result.stdout + result.stderr
    assert list((installroot / "usr/lib/debug/usr/bin").glob("hello-*.debug"))
    sources = dnf_install_into(tmp_path / "root2", tmp_path / "yum.repos.d", "hello-debugsource")
    assert sources.returncode == 0, sources.stdout + sources.stderr
    assert list((tmp_path / "root2/usr/src/debug").glob("hello-1.0-1*/hello.c"))


METAINFO = """<?xml version="1.0" encoding="UTF-8"?>
<component type="console-application">
  <id>org.example.hello</id>
  <metadata_license>CC0-1.0</metadata_license>
  <project_license>MIT</project_license>
  <name>Hello</name>
  <summary>Says hello to the world</summary>
  <description><p>A tiny program that prints hello.</p></description>
  <provides><binary>hello</binary></provides>
</component>
"""

APP_SPEC = """\
Name: hello
Version: 1.0
Release: 1
Summary: A tiny console application with AppStream metadata
License: MIT
BuildArch: noarch
AutoReqProv: no
Source0: org.example.hello.metainfo.xml

%description
Prints hello; ships a metainfo file.

%install
mkdir -p %{buildroot}/usr/bin
printf '#!/bin/sh\\necho hello\\n' > %{buildroot}/usr/bin/hello
chmod 0755 %{buildroot}/usr/bin/hello
install -D -m 0644 %{SOURCE0} %{buildroot}%{_datadir}/metainfo/org.example.hello.metainfo.xml

%files
/usr/bin/hello
%{_datadir}/metainfo/org.example.hello.metainfo.xml
"""


def app_srpm(tmp_path: Path) -> Path:
    sources = tmp_path / "app"
    sources.mkdir()
    (sources / "org.example.hello.metainfo.xml").write_text(METAINFO)
    (sources / "hello.spec").write_text(APP_SPEC)
    topdir = tmp_path / "app-top"
    subprocess.run(
        ["rpmbuild", "-bs", "--define", f"_topdir {topdir}", "--define", f"_sourcedir {sources}"]
        + [str(sources / "hello.spec")],
        check=True,
        capture_output=True,
    )
    (srpm,) = (topdir / "SRPMS").glob("*.src.rpm")
    return srpm


def repomd_data(repo_url: str) -> dict[str, str]:
    """{metadata type: location href} of a repository's repomd.xml, fetched as dnf does."""
    repomd = requests.get(f"{repo_url}repodata/repomd.xml", timeout=30)
    assert repomd.status_code == 200
    root = ElementTree.fromstring(repomd.content)  # noqa: S314 - our own server's metadata
    return {
        data.get("type"): data.find(f"{REPO_NS}location").get("href")
        for data in root.iter(f"{REPO_NS}data")
    }


REPO_NS = "{http://linux.duke.edu/metadata/repo}"


def test_appstream_metadata_follows_the_project_option(live_server, worker, packager, tmp_path):
    user, _, _ = packager
    cli = cli_for(live_server, tmp_path, user)
    cli("modify", "tools", "--appstream", "on")
    cli("create", "plain", "--chroot", "fedora-43-x86_64", "--appstream", "off")
    srpm = app_srpm(tmp_path)
    for project in ("tools", "plain"):
        output = cli("build", "--nowait", "-r", "fedora-43-x86_64", project, str(srpm)).stdout
        build = finished_build(created_build_id(output))
        assert build.state == State.SUCCEEDED, list(build.tasks.values("state", "state_reason"))

    repo_url = f"{live_server.url}/results/packager/tools/fedora-43-x86_64/"
    locations = repomd_data(repo_url)
    assert "appstream" in locations, locations
    catalog = requests.get(repo_url + locations["appstream"], timeout=30)
    text = gzip.decompress(catalog.content).decode()
    assert "<id>org.example.hello</id>" in text and "<pkgname>hello</pkgname>" in text
    # dnf reads the repository with the extra metadata and installs from it.
    result, installroot = install_from_served_repo(live_server, tmp_path, "hello")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (installroot / "usr/share/metainfo/org.example.hello.metainfo.xml").is_file()

    plain = repomd_data(f"{live_server.url}/results/packager/plain/fedora-43-x86_64/")
    assert "primary" in plain and "appstream" not in plain
