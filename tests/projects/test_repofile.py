"""Tests for apps/projects/repofile.py: chroot lookup and the .repo text."""

import pytest

from apps.projects.models import Chroot, ProjectChroot
from apps.projects.repofile import find_repo_chroot, repo_file_text
from tests.factories import GroupFactory, ProjectFactory, UserFactory, chroot

pytestmark = pytest.mark.django_db

PUBLIC_URL = "https://copr.example.org:8443"


def test_user_project_main_section_is_copr_s_template():
    project = ProjectFactory(name="hello", owner_user=UserFactory(username="alice"))

    text = repo_file_text(
        project=project, chroot=chroot("fedora-43-x86_64"), arch=None, public_url=PUBLIC_URL
    )

    assert text == (
        "[copr:copr.example.org:alice:hello]\n"
        "name=Copr repo for hello owned by alice\n"
        "baseurl=https://copr.example.org:8443/results/alice/hello/fedora-$releasever-$basearch/\n"
        "type=rpm-md\n"
        "skip_if_unavailable=True\n"
        "gpgcheck=1\n"
        "gpgkey=https://copr.example.org:8443/results/alice/hello/pubkey.gpg\n"
        "repo_gpgcheck=0\n"
        "enabled=1\n"
        "enabled_metadata=1\n"
    )


def test_group_project_id_says_group_and_urls_keep_the_at_sign():
    project = ProjectFactory(name="tools", owner_user=None, owner_group=GroupFactory(name="devs"))

    text = repo_file_text(
        project=project, chroot=chroot("fedora-43-x86_64"), arch=None, public_url=PUBLIC_URL
    )

    assert text.startswith("[copr:copr.example.org:group_devs:tools]\n")
    assert "name=Copr repo for tools owned by @devs\n" in text
    assert "/results/@devs/tools/fedora-$releasever-$basearch/\n" in text
    assert "gpgkey=https://copr.example.org:8443/results/@devs/tools/pubkey.gpg\n" in text


@pytest.mark.parametrize(
    ("chroot_name", "results_dir"),
    [
        ("fedora-rawhide-x86_64", "fedora-$releasever-$basearch"),
        ("centos-stream-10-aarch64", "centos-stream-$releasever-$basearch"),
        ("epel-9-x86_64", "epel-9-$basearch"),
    ],
)
def test_version_is_releasever_for_fedora_and_centos_stream_and_literal_for_epel(
    chroot_name, results_dir
):
    project = ProjectFactory(chroot_names=[chroot_name])

    text = repo_file_text(
        project=project, chroot=chroot(chroot_name), arch=None, public_url=PUBLIC_URL
    )

    assert f"/{project.name}/{results_dir}/\n" in text


def test_priority_and_module_hotfixes_close_the_section_when_set():
    project = ProjectFactory(repo_priority=5, module_hotfixes=True)

    text = repo_file_text(project=project, chroot=chroot(), arch=None, public_url=PUBLIC_URL)

    assert text.endswith("enabled_metadata=1\nmodule_hotfixes=1\npriority=5\n")


def test_arch_keeps_basearch_in_the_main_section_like_copr():
    project = ProjectFactory(multilib=True)

    text = repo_file_text(project=project, chroot=chroot(), arch="x86_64", public_url=PUBLIC_URL)

    assert "-$basearch/\n" in text
    assert ":ml]" not in text  # no i386 twin enabled


def test_multilib_section_follows_when_the_i386_twin_is_enabled():
    project = ProjectFactory(name="hello", multilib=True)
    twin = chroot("fedora-43-i386")  # in the catalog, as in Copr's
    ProjectChroot.objects.create(project=project, chroot=twin)

    text = repo_file_text(project=project, chroot=chroot(), arch="x86_64", public_url=PUBLIC_URL)

    main, multilib = text.split("\n\n")
    assert "$basearch" in main
    assert multilib.startswith(f"[copr:copr.example.org:{project.ownername}:hello:ml]\n")
    assert f"name=Copr repo for hello owned by {project.ownername} (i386)\n" in multilib
    assert "/hello/fedora-$releasever-i386/\n" in multilib
    assert "repo_gpgcheck=0\ncost=1100\nenabled=1\n" in multilib


def test_find_repo_chroot_matches_name_release_and_arch():
    project = ProjectFactory(chroot_names=["fedora-43-x86_64", "fedora-43-aarch64"])

    assert find_repo_chroot(project, "fedora-43", "aarch64").name == "fedora-43-aarch64"
    assert find_repo_chroot(project, "fedora-43", None).name_release == "fedora-43"
    assert find_repo_chroot(project, "fedora-43", "s390x") is None
    assert find_repo_chroot(project, "fedora-4", None) is None
    assert find_repo_chroot(project, "fedora-44", None) is None


def test_find_repo_chroot_skips_inactive_but_keeps_end_of_life():
    project = ProjectFactory(chroot_names=["fedora-43-x86_64", "epel-9-x86_64"])
    Chroot.objects.filter(name="fedora-43-x86_64").update(is_active=False)
    Chroot.objects.filter(name="epel-9-x86_64").update(is_active=False, end_of_life=True)

    assert find_repo_chroot(project, "fedora-43", None) is None
    assert find_repo_chroot(project, "epel-9", None).name == "epel-9-x86_64"
