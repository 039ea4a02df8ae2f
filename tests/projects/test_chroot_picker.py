"""The chroot picker (apps/projects/templatetags/chroot_picker.py) on the pages that use it."""

import re

import pytest
from django.urls import reverse

from apps.fleet.services import host_arch
from apps.projects.catalog import FEDORA_ARCHES as ARCHES
from tests.factories import ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db
OTHER_ARCH = "aarch64" if host_arch() != "aarch64" else "x86_64"


def picker(html: str) -> str:
    return re.search(r'<table class="chroot-picker".*?</table>', html, re.S)[0]


def test_new_project_picker_has_a_row_per_release_and_a_column_per_arch(client):
    client.force_login(UserFactory())
    table = picker(client.get(reverse("project-new")).content.decode())
    headers = re.findall(r'<th scope="col" class="arch[^"]*">(\w+)', table)
    assert headers == list(ARCHES)
    groups = re.findall(r'scope="rowgroup">([\w ]+)<', table)
    assert groups == ["Fedora", "CentOS Stream", "EPEL"]
    releases = re.findall(r'<th scope="row">([\w-]+)</th>', table)
    assert releases[releases.index("epel-8") :][:3] == ["epel-8", "epel-9", "epel-10"]
    assert releases.index("fedora-rawhide") == releases.index("fedora-45") + 1
    # Each row holds the release's checkboxes, one per arch, in the columns' order.
    row = re.search(r'<th scope="row">fedora-43</th>(.*?)</tr>', table, re.S)[1]
    assert re.findall(r'value="([\w-]+)"', row) == [f"fedora-43-{arch}" for arch in ARCHES]


def test_arches_without_a_builder_are_marked(client):
    client.force_login(UserFactory())
    table = picker(client.get(reverse("project-new")).content.decode())
    assert f'class="arch unserved">{OTHER_ARCH}<span class="no-builder"' in table
    assert f'class="arch">{host_arch()}</th>' in table
    assert (
        f'value="fedora-43-{OTHER_ARCH}" id="id_chroots_fedora-43-{OTHER_ARCH}" data-unserved'
        in (table)
    )


def test_new_build_form_ticks_only_the_chroots_a_builder_serves(client):
    host, other = f"fedora-43-{host_arch()}", f"fedora-43-{OTHER_ARCH}"
    project = ProjectFactory(chroot_names=[host, other])
    client.force_login(project.owner_user)
    url = reverse("build-new-type", args=[project.ownername, project.name, "scm"])
    table = picker(client.get(url).content.decode())
    assert re.search(rf'value="{host}" id="[^"]+" checked', table)
    assert re.search(rf'value="{other}" id="[^"]+" data-unserved="1">', table)
