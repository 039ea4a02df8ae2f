"""The chroot catalog: Copr's names, i386, and the EOL EPELs added to existing installs."""

import importlib

import pytest
from django.apps import apps

from apps.projects.models import Chroot

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
