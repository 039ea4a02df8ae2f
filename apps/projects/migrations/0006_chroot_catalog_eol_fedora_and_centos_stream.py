"""Add the end-of-life Fedora (39 to 42) and CentOS Stream 8 chroots Copr still lists, in
their EOL state (inactive), to existing installs.

As 0003: only chroots missing from the catalog are created, so an operator's changes to
existing ones stay; the reverse removes only the added chroots that nothing uses.
"""

from django.db import migrations

RELEASES = {("fedora", version) for version in ("39", "40", "41", "42")} | {("centos-stream", "8")}


def added_entries():
    from apps.projects.catalog import catalog_entries

    return [
        entry
        for entry in catalog_entries()
        if entry.get("end_of_life") and (entry["os_release"], entry["os_version"]) in RELEASES
    ]


def add_missing_chroots(apps, schema_editor):
    Chroot = apps.get_model("projects", "Chroot")
    existing = set(Chroot.objects.values_list("name", flat=True))
    for entry in added_entries():
        if entry["name"] not in existing:
            Chroot.objects.create(**entry)


def remove_added_chroots(apps, schema_editor):
    Chroot = apps.get_model("projects", "Chroot")
    for chroot in Chroot.objects.filter(name__in=[entry["name"] for entry in added_entries()]):
        if not chroot.project_chroots.exists() and not chroot.tasks.exists():
            chroot.delete()


class Migration(migrations.Migration):
    dependencies = [("projects", "0005_search_trigram_indexes")]

    operations = [migrations.RunPython(add_missing_chroots, remove_added_chroots)]
