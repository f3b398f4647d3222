import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import accounts.models


def fill_ae_titles(apps, schema_editor):
    """Existing hospitals get their slug in capitals (cut to 16 characters), numbered should two cuts collide."""
    Hospital = apps.get_model("accounts", "Hospital")
    taken = set()
    for hospital in Hospital.objects.order_by("pk"):
        title = accounts.models.default_ae_title(hospital.slug)
        number = 1
        while title in taken:
            suffix = str(number)
            title = accounts.models.default_ae_title(hospital.slug)[: accounts.models.AE_TITLE_MAX_LENGTH - len(suffix)]
            title += suffix
            number += 1
        taken.add(title)
        hospital.ae_title = title
        hospital.save(update_fields=["ae_title"])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_hospital_creates_patients_from_dicom"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="hospital",
            name="ae_title",
            field=models.CharField(max_length=16, null=True, verbose_name="DICOM AE title"),
        ),
        migrations.RunPython(fill_ae_titles, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="hospital",
            name="ae_title",
            field=models.CharField(
                help_text="The called AE title with which scanners and PACS send this hospital's images by DICOM.",
                max_length=16,
                unique=True,
                validators=[accounts.models.validate_ae_title],
                verbose_name="DICOM AE title",
            ),
        ),
        migrations.AddField(
            model_name="hospital",
            name="dimse_complete_on_release",
            field=models.BooleanField(
                default=True,
                help_text="A series received by DICOM C-STORE completes when the sender releases the association; "
                "otherwise once no instance arrived for the quiet period.",
                verbose_name="complete DICOM series on release",
            ),
        ),
        migrations.CreateModel(
            name="DicomPeer",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "ae_title",
                    models.CharField(
                        help_text="The AE title the scanner or PACS calls from.",
                        max_length=16,
                        validators=[accounts.models.validate_ae_title],
                        verbose_name="calling AE title",
                    ),
                ),
                (
                    "host",
                    models.GenericIPAddressField(
                        blank=True, help_text="The IP address it must connect from; empty accepts any address.",
                        null=True,
                    ),
                ),
                ("description", models.CharField(blank=True, max_length=200)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "hospital",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="dicom_peers",
                        to="accounts.hospital",
                    ),
                ),
                (
                    "user",
                    models.OneToOneField(
                        editable=False, on_delete=django.db.models.deletion.PROTECT, related_name="dicom_peer",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "DICOM peer",
                "ordering": ["hospital_id", "ae_title"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("hospital", "ae_title"), name="unique_dicom_peer_ae_title_per_hospital"
                    )
                ],
            },
        ),
    ]
