"""RESULTS_URL: results, logs and repositories are linked where the backend serves them, so
the web role never reads the backend's disk (pages, APIv3, the .repo file, the live log)."""

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.builds.models import BuildTask, State
from tests.factories import BuildFactory, BuildTaskFactory

pytestmark = pytest.mark.django_db

RESULTS = "https://backend.example.net/results"
SITE = "https://copr.example.org"


@pytest.fixture(autouse=True)
def results_elsewhere(settings):
    settings.PUBLIC_URL = SITE
    settings.RESULTS_URL = RESULTS


@pytest.fixture
def finished_build(personal_project):
    build = BuildFactory(
        project=personal_project,
        state=State.SUCCEEDED,
        srpm_url="alice/hello/srpm-builds/00000042/hello-1.0-1.src.rpm",
    )
    BuildTaskFactory(
        build=build,
        chroot=None,
        result_dir=f"srpm-builds/{build.pk:08d}",
        started_on=timezone.now(),
    )
    hello = {"name": "hello", "epoch": None, "version": "1.0", "release": "1.fc43"}
    BuildTaskFactory(
        build=build,
        result_dir=f"fedora-43-x86_64/{build.pk:08d}-hello",
        built_packages=[{**hello, "arch": "x86_64"}],
        result_files=["hello-1.0-1.fc43.x86_64.rpm"],
        started_on=timezone.now(),
        ended_on=timezone.now(),
    )
    return build


def test_the_build_page_links_logs_and_results_at_results_url(client, finished_build):
    page = client.get(reverse("build-detail", args=[finished_build.pk])).content.decode()
    task_dir = f"{RESULTS}/alice/hello/fedora-43-x86_64/{finished_build.pk:08d}-hello/"
    for link in (
        task_dir,
        task_dir + "builder-live.log.gz",
        task_dir + "backend.log.gz",
        task_dir + "hello-1.0-1.fc43.x86_64.rpm",
        f"{RESULTS}/alice/hello/srpm-builds/00000042/hello-1.0-1.src.rpm",
    ):
        assert f'href="{link}"' in page, link
    assert f"{SITE}/results/" not in page


def test_the_live_log_follows_the_log_at_results_url_and_reads_no_disk(client, personal_project):
    build = BuildFactory(project=personal_project, state=State.RUNNING)
    task = BuildTaskFactory(
        build=build,
        state=State.RUNNING,
        result_dir=f"fedora-43-x86_64/{build.pk:08d}-hello",
        started_on=timezone.now(),
    )
    page = client.get(reverse("build-live-log", args=[build.pk, task.pk]))
    log_url = f"{RESULTS}/alice/hello/fedora-43-x86_64/{build.pk:08d}-hello/builder-live.log"
    assert f'data-log-url="{log_url}"' in page.content.decode()
    # (The page's Content-Security-Policy lets it fetch there: tests/core/test_settings.py.)
    # The web role cannot know the size of a log on another host: the page asks itself.
    state = client.get(reverse("build-state", args=[build.pk])).json()
    assert state["log_sizes"] is None
    assert state["tasks"] == {str(task.pk): State.RUNNING}


def test_apiv3_build_and_build_chroot_urls_point_at_results_url(client, finished_build):
    build = client.get(f"/api_3/build/{finished_build.pk}").json()
    assert build["repo_url"] == f"{RESULTS}/alice/hello"
    chroot = client.get(
        "/api_3/build-chroot",
        {"build_id": finished_build.pk, "chrootname": "fedora-43-x86_64"},
    ).json()
    assert chroot["result_url"] == (
        f"{RESULTS}/alice/hello/fedora-43-x86_64/{finished_build.pk:08d}-hello/"
    )
    source = client.get(f"/api_3/build/source-chroot/{finished_build.pk}").json()
    assert source["result_url"] == f"{RESULTS}/alice/hello/srpm-builds/{finished_build.pk:08d}/"
    project = client.get("/api_3/project", {"ownername": "alice", "projectname": "hello"}).json()
    assert project["chroot_repos"]["fedora-43-x86_64"] == f"{RESULTS}/alice/hello/fedora-43-x86_64/"


def test_the_repo_file_points_dnf_at_results_url(client, personal_project):
    text = client.get(
        reverse("repo-file", args=["alice", "hello", "fedora-43"]) + "alice-hello-fedora-43.repo"
    ).content.decode()
    # The id still names the site users know; the repository is on the results host.
    assert "[copr:copr.example.org:alice:hello]" in text
    assert f"baseurl={RESULTS}/alice/hello/fedora-$releasever-$basearch/" in text
    assert f"gpgkey={RESULTS}/alice/hello/pubkey.gpg" in text


def test_without_results_url_the_links_stay_on_the_site(client, finished_build, settings):
    settings.RESULTS_URL = ""
    build = client.get(f"/api_3/build/{finished_build.pk}").json()
    assert build["repo_url"] == f"{SITE}/results/alice/hello"
    task = BuildTask.objects.filter(build=finished_build, chroot__isnull=True).get()
    state = client.get(reverse("build-state", args=[finished_build.pk])).json()
    assert state["log_sizes"][str(task.pk)] is None  # local, and no log written


def test_results_may_be_read_from_another_origin(client, settings, tmp_path):
    """The live log page of a web role elsewhere reads the log with its own requests."""
    log = settings.RESULTS_ROOT / "alice" / "hello" / "builder-live.log"
    log.parent.mkdir(parents=True)
    log.write_text("compiling\n")
    response = client.get("/results/alice/hello/builder-live.log", HTTP_RANGE="bytes=3-")
    assert response.status_code == 206
    assert response["Access-Control-Allow-Origin"] == "*"
