"""Trigram indexes for the search, on PostgreSQL only (SQLite searches without an index).

Search matches substrings (`q=newc` finds `hello-newc`) with Django's `icontains`, which
PostgreSQL runs as `UPPER(column::text) LIKE UPPER(%s)`; GIN indexes over that very
expression with `gin_trgm_ops` let it answer from the index instead of reading every row.
"""

from django.db import migrations

INDEXES = (
    ("project_name_trgm", "projects_project", "name"),
    ("project_description_trgm", "projects_project", "description"),
    ("package_name_trgm", "packages_package", "name"),
)


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, table, column in INDEXES:
        expression = f'UPPER("{column}"::text) gin_trgm_ops'
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ({expression})")


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _table, _column in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("projects", "0004_name_and_repo_validators"),
        ("packages", "0002_package_name_validator"),
    ]

    operations = [migrations.RunPython(create_indexes, drop_indexes)]
