"""Shared fixtures: two hospitals with a user of every role, so each test can check both sides of a tenant wall."""

from dataclasses import dataclass

import pytest


@dataclass
class HospitalWorld:
    hospital: object
    admin: object
    doctor: object
    patient: object  # the Patient record; its login is patient.user
    api_key: object
    api_secret: str

    @property
    def patient_user(self):
        return self.patient.user


def build_world(slug, name):
    # Imported here so that the pure ml tests can run without Django (`-p no:django`).
    from accounts.services import create_api_key
    from tests.factories import DoctorFactory, HospitalAdminFactory, HospitalFactory, PatientWithLoginFactory

    hospital = HospitalFactory(slug=slug, name=name)
    api_key, secret = create_api_key(hospital=hospital, name="pacs")
    return HospitalWorld(
        hospital=hospital,
        admin=HospitalAdminFactory(hospital=hospital, email=f"admin@{slug}.test"),
        doctor=DoctorFactory(hospital=hospital, email=f"doctor@{slug}.test"),
        patient=PatientWithLoginFactory(
            hospital=hospital, user__email=f"patient@{slug}.test", full_name=f"Patient of {name}"
        ),
        api_key=api_key,
        api_secret=secret,
    )


@pytest.fixture(autouse=True)
def empty_cache():
    """Each test starts with an empty cache, whichever tests ran before it.

    Rate-limit counters (failed logins, password resets, failed signatures) live there, counted per minute.
    """
    from django.conf import settings

    if not settings.configured:  # the pure ml tests, run with -p no:django
        yield
        return
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def north(db):
    return build_world("north", "North Hospital")


@pytest.fixture
def south(db):
    return build_world("south", "South Hospital")


@pytest.fixture
def superuser(db):
    from accounts.models import User

    return User.objects.create_superuser(email="root@platform.test", password="platform-root-password")


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture(scope="session")
def tiny_model_store(tmp_path_factory):
    """An MLflow store with tiny demo champions of every catalogue entry, made once per test session.

    Shared by the pipeline, command and browser tests, so the models are registered only once (the
    brain MRI pair adds about six seconds).
    """
    from ml.catalogue import BRAIN_MR_FLAIR
    from tests.pipeline.tiny_models import register_tiny_models

    directory = tmp_path_factory.mktemp("mlflow")
    tracking_uri = f"sqlite:///{directory / 'mlflow.db'}"
    register_tiny_models(tracking_uri)
    register_tiny_models(tracking_uri, entry=BRAIN_MR_FLAIR)
    return tracking_uri
