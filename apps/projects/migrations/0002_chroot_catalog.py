"""Fill the chroot catalog with current Fedora, rawhide, EPEL and CentOS Stream chroots."""

from django.db import migrations


def add_catalog(apps, schema_editor):
    from apps.projects.catalog import catalog_entries

    Chroot = apps.get_model("projects", "Chroot")
    for entry in catalog_entries():
        Chroot.objects.update_or_create(name=entry["name"], defaults=entry)


class Migration(migrations.Migration):
    dependencies = [("projects", "0001_initial")]

    operations = [migrations.RunPython(add_catalog, migrations.RunPython.noop)]
