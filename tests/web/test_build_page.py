"""The build page (apps/builds/views.py): built packages as name-version-release.arch links."""

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.builds.execution import task_result_dir
from apps.builds.models import BuildTask, State
from tests.factories import BuildFactory, BuildTaskFactory, chroot

pytestmark = pytest.mark.django_db


def test_built_packages_show_nvra_with_links_to_the_rpms(client, personal_project, settings):
    settings.PUBLIC_URL = "http://copr.example.org"
    build = BuildFactory(project=personal_project)
    hello = {"name": "hello", "epoch": None, "version": "1.0", "release": "1.fc43"}
    BuildTaskFactory(
        build=build,
        result_dir=f"fedora-43-x86_64/{build.pk:08d}-hello",
        built_packages=[{**hello, "arch": "src"}, {**hello, "arch": "x86_64"}],
        result_files=["hello-1.0-1.fc43.src.rpm", "hello-1.0-1.fc43.x86_64.rpm"],
    )
    # A failed chroot built nothing that anyone can install.
    BuildTaskFactory(
        build=build,
        state=State.FAILED,
        chroot=chroot("fedora-43-aarch64"),
        built_packages=[{**hello, "arch": "aarch64"}],
    )
    page = client.get(reverse("build-detail", args=[build.pk])).content.decode()
    rpm_url = (
        f"http://copr.example.org/results/alice/hello/fedora-43-x86_64/{build.pk:08d}-hello/"
        "hello-1.0-1.fc43.x86_64.rpm"
    )
    assert f'<a href="{rpm_url}">hello-1.0-1.fc43.x86_64</a>' in page
    assert "hello-1.0-1.fc43.aarch64" not in page and "hello-1.0-1.fc43.src" not in page


def test_state_endpoint_tells_the_live_log_size(client, personal_project):
    build = BuildFactory(project=personal_project, state=State.RUNNING)
    task = BuildTaskFactory(
        build=build, state=State.RUNNING, result_dir=f"fedora-43-x86_64/{build.pk:08d}-hello"
    )
    url = reverse("build-state", args=[build.pk])
    # Started, but the runner has not written its log yet: nothing to read.
    assert client.get(url).json()["log_sizes"] == {str(task.pk): None}
    BuildTask.objects.filter(pk=task.pk).update(started_on=timezone.now())
    log = task_result_dir(task) / "builder-live.log"
    log.parent.mkdir(parents=True)
    log.write_text("compiling\n")
    assert client.get(url).json()["log_sizes"] == {str(task.pk): len("compiling\n")}
