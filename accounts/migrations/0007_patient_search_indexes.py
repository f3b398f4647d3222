"""Patient search: an ordered index for the admin's list, and trigram indexes for name and MRN search.

Django's ``icontains`` on PostgreSQL is ``UPPER(column::text) LIKE UPPER('%text%')``; a GIN trigram index on
that same expression lets PostgreSQL find the matches without reading every patient of the hospital. The
trigram indexes exist on PostgreSQL only (pg_trgm is a trusted extension there since version 13); SQLite
keeps scanning, which is fine at the sizes it serves.
"""

from django.db import migrations, models

TRIGRAM_INDEXES = {
    "patient_full_name_trigram": "full_name",
    "patient_mrn_trigram": "mrn",
}


def create_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, column in TRIGRAM_INDEXES.items():
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{name}" ON "accounts_patient" USING gin (UPPER("{column}"::text) gin_trgm_ops)'
        )


def drop_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in TRIGRAM_INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0006_it_admin_role'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='patient',
            index=models.Index(fields=['hospital', 'full_name', 'mrn'], name='patient_by_name_per_hospital'),
        ),
        migrations.RunPython(create_trigram_indexes, drop_trigram_indexes),
    ]
