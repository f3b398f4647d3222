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
