"""The chroot catalog: Copr's names, i386, and the EOL chroots added to existing installs."""

import importlib

import pytest
from django.apps import apps

from apps.core.errors import InvalidForm
from apps.projects.models import Chroot
from apps.workflows.projects import project_create
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
migration = importlib.import_module(
    "apps.projects.migrations.0003_chroot_catalog_i386_and_eol_epel"
)


def test_eol_epels_are_inactive_and_end_of_life():
    eol = Chroot.objects.filter(os_release="epel", os_version__in=["6", "7"])
    assert sorted(eol.values_list("name", flat=True)) == [
        "epel-6-i386", "epel-6-x86_64", "epel-7-aarch64", "epel-7-ppc64le", "epel-7-x86_64",
    ]  # fmt: skip
    assert not eol.filter(is_active=True).exists()
    assert not eol.filter(end_of_life=False).exists()
    assert Chroot.objects.get(name="epel-7-x86_64").macros["dist"] == ".el7"


def test_migration_adds_missing_chroots_and_keeps_the_operators_changes():
    Chroot.objects.filter(name__in=["fedora-43-i386", "epel-7-x86_64"]).delete()
    Chroot.objects.filter(name="fedora-44-i386").update(is_active=False, comment="Not here")
    migration.add_missing_chroots(apps, None)
    assert Chroot.objects.get(name="fedora-43-i386").is_active
    assert Chroot.objects.get(name="epel-7-x86_64").end_of_life
    kept = Chroot.objects.get(name="fedora-44-i386")
    assert not kept.is_active and kept.comment == "Not here"


eol_migration = importlib.import_module(
    "apps.projects.migrations.0006_chroot_catalog_eol_fedora_and_centos_stream"
)


def test_eol_fedoras_and_centos_stream_8_are_listed_as_copr_lists_them():
    eol = Chroot.objects.filter(end_of_life=True)
    names = set(eol.values_list("name", flat=True))
    assert {"fedora-39-x86_64", "fedora-42-i386", "fedora-42-s390x"} <= names
    assert {"centos-stream-8-x86_64", "centos-stream-8-aarch64"} <= names
    assert not eol.filter(is_active=True).exists()
    assert Chroot.objects.get(name="fedora-42-x86_64").macros["dist"] == ".fc42"


def test_eol_chroots_are_refused_with_coprs_form_message():
    alice = UserFactory(username="alice")
    for name in ("fedora-42-x86_64", "epel-7-x86_64", "centos-stream-8-x86_64"):
        with pytest.raises(InvalidForm) as refused:
            project_create(user=alice, ownername="alice", name="old", chroot_names=[name])
        assert refused.value.message == f"chroots: '{name}' is not a valid choice for this field"


def test_eol_migration_adds_the_missing_ones_and_keeps_the_operators_changes():
    Chroot.objects.filter(name="fedora-41-x86_64").delete()
    Chroot.objects.filter(name="fedora-42-x86_64").update(comment="Gone since May")
    eol_migration.add_missing_chroots(apps, None)
    assert Chroot.objects.get(name="fedora-41-x86_64").end_of_life
    assert Chroot.objects.get(name="fedora-42-x86_64").comment == "Gone since May"
    eol_migration.remove_added_chroots(apps, None)
    assert not Chroot.objects.filter(name__startswith="fedora-41-").exists()
    assert Chroot.objects.filter(name="epel-7-x86_64").exists()  # 0003's, not this one's
