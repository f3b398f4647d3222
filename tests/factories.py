"""factory_boy factories for every model. Each app's helper adds its own here."""

import factory
from django.utils import timezone

from accounts.models import Hospital, Patient, Role, Sex, User

DEFAULT_PASSWORD = "correct-horse-battery-staple"


class HospitalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Hospital
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Hospital {n}")
    slug = factory.Sequence(lambda n: f"hospital-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.org")
    full_name = factory.Faker("name")
    hospital = factory.SubFactory(HospitalFactory)
    role = Role.DOCTOR
    date_joined = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def password(user, create, extracted, **kwargs):
        user.set_password(extracted or DEFAULT_PASSWORD)
        if create:
            user.save()
            from accounts.services import mark_email_verified

            mark_email_verified(user)


class DoctorFactory(UserFactory):
    role = Role.DOCTOR


class HospitalAdminFactory(UserFactory):
    role = Role.HOSPITAL_ADMIN


class PatientUserFactory(UserFactory):
    role = Role.PATIENT


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    hospital = factory.SubFactory(HospitalFactory)
    mrn = factory.Sequence(lambda n: f"MRN{n:06d}")
    full_name = factory.Faker("name")
    birth_date = factory.Faker("date_of_birth", minimum_age=20, maximum_age=90)
    sex = factory.Iterator([Sex.FEMALE, Sex.MALE])
    user = None


class PatientWithLoginFactory(PatientFactory):
    user = factory.SubFactory(PatientUserFactory, hospital=factory.SelfAttribute("..hospital"))


def _key_image_overlay_png(size=96):
    """A small grey slice with a yellow lesion outline, drawn like ml.overlays does (BGR (0, 215, 255))."""
    import cv2
    import numpy as np

    image = np.full((size, size, 3), 60, dtype=np.uint8)
    cv2.circle(image, (size // 2, size // 2), size // 3, (150, 150, 150), -1)
    cv2.circle(image, (size // 2, size // 2), size // 6, (0, 215, 255), max(2, size // 48))
    return cv2.imencode(".png", image)[1].tobytes()


def _key_image_overlay_file():
    from django.core.files.base import ContentFile

    return ContentFile(_key_image_overlay_png(), name="overlay.png")


class StudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "scans.Study"

    hospital = factory.SubFactory(HospitalFactory)
    patient = factory.SubFactory(PatientFactory, hospital=factory.SelfAttribute("..hospital"))
    study_instance_uid = factory.Sequence(lambda n: f"1.2.826.0.1.3680043.9.7001.{n}")
    accession_number = factory.Sequence(lambda n: f"ACC{n:06d}")
    study_date = factory.Faker("date_between", start_date="-2y", end_date="today")
    description = "CT chest"


class SeriesFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "scans.Series"

    study = factory.SubFactory(StudyFactory)
    hospital = factory.SelfAttribute("study.hospital")
    series_instance_uid = factory.Sequence(lambda n: f"1.2.826.0.1.3680043.9.7002.{n}")
    series_number = factory.Sequence(lambda n: n + 1)
    modality = "CT"
    description = "Chest 1.25mm"
    status = "analysed"


class InstanceFactory(factory.django.DjangoModelFactory):
    """A row only: the file name is not backed by a stored file."""

    class Meta:
        model = "scans.Instance"

    series = factory.SubFactory(SeriesFactory)
    hospital = factory.SelfAttribute("series.hospital")
    sop_instance_uid = factory.Sequence(lambda n: f"1.2.826.0.1.3680043.9.7003.{n}")
    instance_number = factory.Sequence(lambda n: n + 1)
    file = factory.LazyAttribute(lambda instance: f"hospitals/test/{instance.sop_instance_uid}.dcm")
    file_size = 1024
    sha256 = factory.Sequence(lambda n: f"{n:064x}")
    rows = 512
    columns = 512
    pixel_spacing = [0.7, 0.7]
    slice_thickness = 1.25
    slice_location = factory.Sequence(lambda n: float(n) * 1.25)


class UploadBatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "scans.UploadBatch"

    hospital = factory.SubFactory(HospitalFactory)
    uploaded_by = factory.SubFactory(DoctorFactory, hospital=factory.SelfAttribute("..hospital"))
    source = "web"
    closed_at = factory.LazyFunction(timezone.now)


class UploadedFileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "scans.UploadedFile"

    batch = factory.SubFactory(UploadBatchFactory)
    name = factory.Sequence(lambda n: f"IM{n:04d}.dcm")
    size = 1024
    outcome = "stored"


class AnalysisFactory(factory.django.DjangoModelFactory):
    """A succeeded analysis with believable results (adenocarcinoma, one lesion measured in mm)."""

    class Meta:
        model = "ml.Analysis"

    series = factory.SubFactory(SeriesFactory)
    hospital = factory.SelfAttribute("series.hospital")
    classifier_name = "chest-ct-vgg16"
    classifier_version = "3"
    segmenter_name = "chest-ct-unet"
    segmenter_version = "2"
    is_demo_model = True
    status = "succeeded"
    predicted_class = "adenocarcinoma"
    class_probabilities = factory.LazyFunction(
        lambda: {
            "adenocarcinoma": 0.82,
            "large_cell_carcinoma": 0.07,
            "squamous_cell_carcinoma": 0.06,
            "normal": 0.05,
        }
    )
    measurements = factory.LazyFunction(
        lambda: {
            "has_physical_scale": True,
            "area_unit": "mm2",
            "area_per_slice": [0.0, 310.5, 402.1, 120.0],
            "lesion_voxel_count": 1700,
            "volume_ml": 1.04,
            "slice_spacing_source": "image_position_patient",
            "largest_diameter": 23.4,
            "largest_diameter_slice_index": 2,
            "largest_area": 402.1,
            "largest_area_slice_index": 2,
            "largest_area_slice_location_mm": -112.5,
            "notes": [],
        }
    )
    finished_at = factory.LazyFunction(timezone.now)


class KeyImageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "ml.KeyImage"

    analysis = factory.SubFactory(AnalysisFactory)
    slice_index = factory.Sequence(lambda n: n % 4)
    reason = "largest_lesion"
    slice_location = -112.5
    lesion_area = 402.1
    overlay = factory.LazyFunction(lambda: _key_image_overlay_file())
