"""Log lines are JSON and never carry a patient's name or birth date."""

import datetime
import json
import logging

import pytest

from portal.logging import JsonFormatter, RedactPatientDataFilter

PATIENT_NAME = "Josephine Quarrington"
BIRTH_DATE = "1961-07-14"


class Collector(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []
        self.setFormatter(JsonFormatter())
        self.addFilter(RedactPatientDataFilter())

    def emit(self, record):
        self.lines.append(self.format(record))


@pytest.fixture
def log_lines():
    collector = Collector()
    logger = logging.getLogger("radassist.test")
    logger.addHandler(collector)
    yield collector.lines
    logger.removeHandler(collector)


def assert_no_patient_data(line):
    assert PATIENT_NAME not in line
    assert "Quarrington" not in line
    assert BIRTH_DATE not in line
    assert "1961" not in line


def test_patient_extras_are_left_out_of_the_json_line(log_lines):
    logging.getLogger("radassist.test").warning(
        "series %s ingested",
        "1.2.840.1",
        extra={
            "patient_name": PATIENT_NAME,
            "PatientBirthDate": BIRTH_DATE,
            "birth_date": datetime.date(1961, 7, 14),
            "series_pk": 42,
            "context": {"full_name": PATIENT_NAME, "mrn": "MRN-7", "dob": BIRTH_DATE},
        },
    )

    entry = json.loads(log_lines[0])
    assert_no_patient_data(log_lines[0])
    assert entry["level"] == "WARNING"
    assert entry["message"] == "series 1.2.840.1 ingested"
    assert entry["series_pk"] == 42
    assert entry["context"] == {"mrn": "MRN-7"}
    assert not {"patient_name", "PatientBirthDate", "birth_date"} & entry.keys()


def test_model_instances_and_dicom_names_are_not_rendered_through_str(db, log_lines):
    from pydicom.valuerep import PersonName

    from tests.factories import HospitalFactory

    class PatientLike:
        def __str__(self):
            return PATIENT_NAME

    hospital = HospitalFactory(name=f"Clinic of {PATIENT_NAME}")
    logging.getLogger("radassist.test").info(
        "report for %s at %s by %s", PersonName("Quarrington^Josephine"), hospital, PatientLike()
    )

    assert_no_patient_data(log_lines[0])
    assert f"accounts.Hospital#{hospital.pk}" in json.loads(log_lines[0])["message"]


def test_numeric_arguments_keep_their_format(log_lines):
    import numpy

    logging.getLogger("radassist.test").info(
        "lesion volume %.1f mL over %d slices",
        numpy.float32(12.34),
        numpy.int64(40),
        extra={"dice": numpy.float64(0.5)},
    )

    entry = json.loads(log_lines[0])
    assert entry["message"] == "lesion volume 12.3 mL over 40 slices"
    assert entry["dice"] == 0.5


def test_django_request_log_keeps_method_and_path_but_not_the_query(rf, log_lines):
    request = rf.get("/patients/", {"q": PATIENT_NAME})
    logging.getLogger("radassist.test").warning(
        "Not Found: %s", request.get_full_path(), extra={"status_code": 404, "request": request}
    )

    entry = json.loads(log_lines[0])
    assert_no_patient_data(log_lines[0])
    assert entry["status_code"] == 404
    assert entry["request"] == "GET /patients/"
    assert entry["message"] == "Not Found: /patients/?[redacted]"


def test_exception_is_structured_and_keeps_no_local_values(log_lines):
    def ingest(patient_name):
        raise ValueError("could not parse /studies/?name=Quarrington")

    try:
        ingest(PATIENT_NAME)
    except ValueError:
        logging.getLogger("radassist.test").exception("ingest failed")

    exception = json.loads(log_lines[0])["exception"]
    assert_no_patient_data(log_lines[0])
    assert exception["type"] == "builtins.ValueError"
    assert exception["message"] == "could not parse /studies/?[redacted]"
    assert exception["traceback"][-1].endswith("in ingest")


def test_django_loggers_go_through_the_json_handler():
    django_logger = logging.getLogger("django.request")

    assert logging.getLogger("django").handlers == []
    assert django_logger.propagate
    assert any(isinstance(handler.formatter, JsonFormatter) for handler in logging.getLogger().handlers)
