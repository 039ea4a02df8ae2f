"""The build page (apps/builds/views.py): built packages as name-version-release.arch links."""

import pytest
from django.urls import reverse

from apps.builds.models import State
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
