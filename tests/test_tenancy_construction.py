"""Tenancy by construction: a child row always belongs to its parent's hospital."""

import pytest

from ml.models import Analysis
from portal.tenancy import HospitalMismatch
from scans.models import Instance, Series, Study
from tests.factories import InstanceFactory, PatientFactory, SeriesFactory, StudyFactory

pytestmark = pytest.mark.django_db


def test_a_child_saved_without_a_hospital_takes_its_parents(north):
    study = StudyFactory(hospital=north.hospital, patient=north.patient)
    series = Series.objects.create(study=study, series_instance_uid="1.2.3.4", modality="CT")
    assert series.hospital_id == north.hospital.pk
    analysis = Analysis.objects.create(series=series, generation=1)
    assert analysis.hospital_id == north.hospital.pk


def test_a_series_cannot_join_a_study_of_another_hospital(north, south):
    foreign_study = StudyFactory(hospital=south.hospital, patient=south.patient)
    with pytest.raises(HospitalMismatch):
        Series.objects.create(hospital=north.hospital, study=foreign_study, series_instance_uid="1.2.3.5")
    assert not Series.objects.filter(series_instance_uid="1.2.3.5").exists()


def test_a_study_cannot_be_filed_under_another_hospitals_patient(north, south):
    with pytest.raises(HospitalMismatch):
        Study.objects.create(hospital=north.hospital, patient=south.patient, study_instance_uid="1.2.3.6")


def test_moving_a_series_to_another_hospitals_study_is_refused(north, south):
    series = SeriesFactory(study=StudyFactory(hospital=north.hospital, patient=north.patient))
    series.study = StudyFactory(hospital=south.hospital, patient=PatientFactory(hospital=south.hospital))
    with pytest.raises(HospitalMismatch):
        series.save()


def test_bulk_inserts_are_checked_and_derive_the_hospital_in_one_query(north, south, django_assert_num_queries):
    series = SeriesFactory(study=StudyFactory(hospital=north.hospital, patient=north.patient))
    foreign = SeriesFactory(study=StudyFactory(hospital=south.hospital, patient=south.patient))
    rows = [InstanceFactory.build(series=series, hospital=None) for _ in range(5)]
    for row in rows:  # as ingest may build them: the parent's id only, the parent itself not loaded
        Instance.series.field.delete_cached_value(row)
    with django_assert_num_queries(2):  # one lookup of the parents' hospitals, one insert
        Instance.objects.bulk_create(rows)
    assert set(Instance.objects.filter(series=series).values_list("hospital_id", flat=True)) == {north.hospital.pk}
    with pytest.raises(HospitalMismatch):
        Instance.objects.bulk_create([InstanceFactory.build(series=foreign, hospital=north.hospital)])
