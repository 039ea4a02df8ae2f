"""Add Copr's Fedora i386 chroots and the end-of-life EPEL 6 and 7 chroots (inactive, EOL).

Only chroots missing from the catalog are created: an operator's changes to existing ones
(activated, marked end of life, commented) stay as they are.
"""

from django.db import migrations


def add_missing_chroots(apps, schema_editor):
    from apps.projects.catalog import catalog_entries

    Chroot = apps.get_model("projects", "Chroot")
    existing = set(Chroot.objects.values_list("name", flat=True))
    for entry in catalog_entries():
        if entry["name"] not in existing and (entry["arch"] == "i386" or entry.get("end_of_life")):
            Chroot.objects.create(**entry)


def remove_added_chroots(apps, schema_editor):
    from apps.projects.catalog import catalog_entries

    Chroot = apps.get_model("projects", "Chroot")
    added = [
        entry["name"]
        for entry in catalog_entries()
        if entry["arch"] == "i386" or entry.get("end_of_life")
    ]
    # Chroots that builds or projects still use are protected and stay.
    for chroot in Chroot.objects.filter(name__in=added):
        if not chroot.project_chroots.exists() and not chroot.tasks.exists():
            chroot.delete()


class Migration(migrations.Migration):
    dependencies = [("projects", "0002_chroot_catalog")]

    operations = [migrations.RunPython(add_missing_chroots, remove_added_chroots)]
