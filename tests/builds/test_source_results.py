"""source_task_finish: the package a build makes keeps its source; the checked-out commit;
Copr's words for a refused package name."""

import gzip
import shutil
from pathlib import Path

import pytest
from django.urls import reverse

from apps.builds.logs import task_result_dir
from apps.builds.models import Build, State
from apps.builds.services import source_task_finish
from apps.packages.models import Package
from builders.protocol import JobResult
from tests.builders.srpm_factory import make_srpm
from tests.factories import BuildFactory, BuildTaskFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db

COMMIT = "0123456789abcdef0123456789abcdef01234567"
SCM_SOURCE = {
    "type": "git",
    "clone_url": "https://example.org/hello.git",
    "committish": "main",
    "subdirectory": "pkg",
    "spec": "hello.spec",
    "srpm_build_method": "rpkg",
}


@pytest.fixture
def scm_source_task(tmp_path, settings):
    settings.RESULTS_ROOT = tmp_path / "results"
    project = ProjectFactory(owner_user=UserFactory(username="alice"), name="hello")
    build = BuildFactory(
        project=project,
        source_type="scm",
        source_json=SCM_SOURCE,
        state=State.RUNNING,
        package_name="",
        requested_chroots=["fedora-43-x86_64"],
    )
    return BuildTaskFactory(
        build=build, chroot=None, state=State.RUNNING, result_dir="srpm-builds/00000001"
    )


def finish(task, tmp_path, commit: str | None = COMMIT) -> Build:
    srpm = make_srpm(tmp_path)
    result = JobResult(
        state=State.SUCCEEDED,
        srpm={"name": "hello", "filename": srpm.name, **({"commit": commit} if commit else {})},
        files=[srpm.name],
    )
    source_task_finish(task=task, result=result, result_dir=srpm.parent)
    return Build.objects.get(pk=task.build_id)


def test_a_package_made_by_an_scm_build_keeps_the_git_source(scm_source_task, tmp_path):
    build = finish(scm_source_task, tmp_path)
    package = Package.objects.get(project=build.project, name="hello")
    assert (package.source_type, package.source_json) == ("scm", SCM_SOURCE)
    assert build.package_id == package.pk


def test_a_package_with_a_source_keeps_its_own(scm_source_task, tmp_path):
    project = scm_source_task.build.project
    own = {"url": "https://example.org/hello-1.0-1.src.rpm"}
    Package.objects.create(project=project, name="hello", source_type="link", source_json=own)
    finish(scm_source_task, tmp_path)
    package = Package.objects.get(project=project, name="hello")
    assert (package.source_type, package.source_json) == ("link", own)


def test_an_upload_does_not_become_a_packages_source(scm_source_task, tmp_path):
    Build.objects.filter(pk=scm_source_task.build_id).update(
        source_type="upload", source_json={"pkg": "hello.src.rpm", "tmp": "00000001"}
    )
    scm_source_task.build.refresh_from_db()
    build = finish(scm_source_task, tmp_path, commit=None)
    assert Package.objects.get(project=build.project, name="hello").source_type == "unset"


def test_the_package_rebuilds_from_its_scm_source(client, scm_source_task, tmp_path, settings):
    settings.SUBMIT_CHECK_URLS = False
    build = finish(scm_source_task, tmp_path)
    client.force_login(build.project.owner_user)
    url = reverse("package-rebuild", args=["alice", "hello", "hello"])
    response = client.post(url)
    assert response.status_code == 302, response.content.decode()[-1500:]
    rebuilt = Build.objects.exclude(pk=build.pk).get()
    assert (rebuilt.source_type, rebuilt.source_json) == ("scm", SCM_SOURCE)


def test_the_checked_out_commit_is_kept_and_shown(client, scm_source_task, tmp_path):
    build = finish(scm_source_task, tmp_path)
    assert build.source_commit == COMMIT
    page = client.get(reverse("build-detail", args=[build.pk])).content.decode()
    assert "<dt>Clone URL</dt>" in page
    assert '<a href="https://example.org/hello.git" rel="nofollow noopener">' in page
    assert "<dt>Committish</dt><dd><code>main</code></dd>" in page
    assert "<dt>Subdirectory</dt><dd><code>pkg</code></dd>" in page
    assert "<dt>SRPM build method</dt><dd><code>rpkg</code></dd>" in page
    assert f"<dt>Commit</dt><dd><code>{COMMIT}</code></dd>" in page


def test_a_reported_commit_that_is_not_a_hash_is_dropped(scm_source_task, tmp_path):
    build = finish(scm_source_task, tmp_path, commit="<script>")
    assert build.source_commit == ""


def finished_source_task(tmp_path, package_name: str):
    """A running source task whose builder returned an SRPM of that name."""
    build = BuildFactory(requested_chroots=["fedora-43-x86_64"])
    task = BuildTaskFactory(
        build=build, chroot=None, state=State.RUNNING, result_dir=f"srpm-builds/{build.pk:08d}"
    )
    result_dir = task_result_dir(task)
    result_dir.mkdir(parents=True)
    srpm = Path(shutil.copy(make_srpm(tmp_path, name=package_name), result_dir))
    result = JobResult(state=State.SUCCEEDED, srpm={"filename": srpm.name})
    source_task_finish(task=task, result=result, result_dir=result_dir)
    task.refresh_from_db()
    return task, result_dir


def test_a_too_long_package_name_is_in_backend_log_in_coprs_words(tmp_path, settings):
    settings.RESULTS_ROOT = tmp_path / "results"
    task, result_dir = finished_source_task(tmp_path, "p" * 101)
    assert task.state == State.FAILED
    assert "Too long package name" in task.state_reason
    with gzip.open(result_dir / "backend.log.gz", "rt") as log:
        assert "Too long package name" in log.read()
    assert not task.build.tasks.exclude(pk=task.pk).exists()
