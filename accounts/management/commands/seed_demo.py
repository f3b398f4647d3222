from datetime import date

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import DicomPeer, Hospital, Patient, Role, Sex, User
from accounts.services import mark_email_verified, register_dicom_peer

DEMO_PASSWORD = "radassist-demo-2026"

DEMO_HOSPITALS = [
    ("northside", "Northside General"),
    ("riverside", "Riverside Clinic"),
]
#: The calling AE title every demo hospital accepts, so that dcmtk's storescu can send right away.
DEMO_DICOM_PEER = "DEMO_PACS"
DEMO_DOCTORS = [("doctor1", "Dr Amelia Hart"), ("doctor2", "Dr Samuel Okafor")]
DEMO_PATIENTS = [
    ("patient1", "Ada Lovelace", date(1961, 12, 10), Sex.FEMALE),
    ("patient2", "Alan Turing", date(1952, 6, 23), Sex.MALE),
    ("patient3", "Grace Hopper", date(1946, 12, 9), Sex.FEMALE),
]


class Command(BaseCommand):
    help = "Create the demo hospitals, their users and patients (idempotent; development only)."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError(
                "seed_demo creates accounts with a published password: it refuses to run with DEBUG off."
            )
        with transaction.atomic():
            for slug, name in DEMO_HOSPITALS:
                self.seed_hospital(slug, name)
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        self.stdout.write("Demo logins (all with the password below):")
        for slug, _name in DEMO_HOSPITALS:
            emails = [f"admin@{slug}.example"] + [f"{u}@{slug}.example" for u, _ in DEMO_DOCTORS]
            emails += [f"{p[0]}@{slug}.example" for p in DEMO_PATIENTS]
            self.stdout.write("  " + ", ".join(emails))
        self.stdout.write(f"Demo password: {DEMO_PASSWORD}")

    def seed_hospital(self, slug, name):
        hospital, _ = Hospital.objects.get_or_create(slug=slug, defaults={"name": name, "ae_title": slug.upper()})
        if not DicomPeer.objects.for_hospital(hospital).filter(ae_title=DEMO_DICOM_PEER).exists():
            register_dicom_peer(hospital=hospital, ae_title=DEMO_DICOM_PEER, description="Demo PACS (any address)")
        self.seed_user(f"admin@{slug}.example", f"{name} administrator", hospital, Role.HOSPITAL_ADMIN)
        for local, full_name in DEMO_DOCTORS:
            self.seed_user(f"{local}@{slug}.example", full_name, hospital, Role.DOCTOR)
        for number, (local, full_name, birth_date, sex) in enumerate(DEMO_PATIENTS, start=1):
            user = self.seed_user(f"{local}@{slug}.example", full_name, hospital, Role.PATIENT)
            Patient.objects.update_or_create(
                hospital=hospital,
                mrn=f"{slug[:2].upper()}{number:06d}",
                defaults={"full_name": full_name, "birth_date": birth_date, "sex": sex, "user": user},
            )

    @staticmethod
    def seed_user(email, full_name, hospital, role):
        user, created = User.objects.get_or_create(
            email=email, defaults={"full_name": full_name, "hospital": hospital, "role": role}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        mark_email_verified(user)
        return user
