"""Structured (JSON) logs that carry no patient names or birth dates.

Logs leave the hospital (log shippers, support tickets), so a log line must never
identify a patient. Three ways patient data reaches a record, and what happens to each:

- ``extra={...}`` fields named like a name or a birth date (``patient_name``,
  ``birth_date``, DICOM's ``PatientName``...) are dropped, also inside nested dicts;
- objects passed as message arguments or extras are rendered without their ``__str__``:
  a model instance becomes ``accounts.Patient#12``, a pydicom dataset or person name
  a placeholder, a request its method and path;
- query strings (where searches by name travel) are cut from messages, request paths
  and exception texts.
"""

import datetime
import decimal
import enum
import json
import logging
import numbers
import re
import traceback
import uuid
from pathlib import PurePath

REDACTED = "[redacted]"

#: Normalised (lower case, letters and digits only) attribute names that may hold a name or a birth date.
_PATIENT_FIELD_PARTS = ("patientname", "patientsname", "fullname", "birthdate", "dateofbirth", "birthday")
_PATIENT_FIELD_NAMES = frozenset({"dob", "name_of_patient", "firstname", "lastname", "givenname", "familyname"})
_STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime", "taskName"}
#: ``/some/path?query`` inside free text: the query string may carry a searched name.
_QUERY_STRING = re.compile(r"(/[^\s?\"'<>]*)\?[^\s\"'<>]*")


def is_patient_field(key):
    normalised = re.sub(r"[^a-z0-9]", "", str(key).lower())
    return normalised in _PATIENT_FIELD_NAMES or any(part in normalised for part in _PATIENT_FIELD_PARTS)


def strip_query_strings(text):
    return _QUERY_STRING.sub(r"\1?" + REDACTED, text)


def safe_value(value):
    """A JSON-serialisable stand-in for ``value`` that cannot reveal patient data through ``__str__``."""
    if isinstance(value, str):
        return strip_query_strings(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, numbers.Integral):  # numpy integers among them
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (uuid.UUID, decimal.Decimal, PurePath)):
        return str(value)
    if isinstance(value, enum.Enum):
        return safe_value(value.value)
    if isinstance(value, (datetime.datetime, datetime.time)):
        return value.isoformat()
    # A bare ``datetime.date`` falls through to ``describe_object``: here it is most often a birth date.
    if isinstance(value, dict):
        return {str(key): safe_value(item) for key, item in value.items() if not is_patient_field(key)}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [safe_value(item) for item in value]
    return describe_object(value)


def describe_object(value):
    meta = getattr(value, "_meta", None)
    if meta is not None and hasattr(meta, "label") and hasattr(value, "pk"):
        return f"{meta.label}#{value.pk}"
    if hasattr(value, "method") and hasattr(value, "path") and hasattr(value, "META"):
        return f"{value.method} {value.path}"
    return f"<{type(value).__module__}.{type(value).__qualname__}>"


class RedactPatientDataFilter(logging.Filter):
    """Make a record safe before any handler sees it: patient extras removed, arguments neutralised."""

    def filter(self, record):
        for key in list(vars(record)):
            if key not in _STANDARD_ATTRIBUTES and is_patient_field(key):
                delattr(record, key)
        if isinstance(record.args, dict):
            record.args = safe_value(record.args)
        elif record.args:
            # Numbers stay as they are so that ``%d`` and ``%.1f`` still format them.
            record.args = tuple(
                arg if isinstance(arg, numbers.Number) and not isinstance(arg, bool) else safe_value(arg)
                for arg in record.args
            )
        if isinstance(record.msg, str):
            record.msg = strip_query_strings(record.msg)
        return True


_redact = RedactPatientDataFilter()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, safe extras and a structured exception."""

    def format(self, record):
        # Also applied here so that handlers configured without the filter (gunicorn's) stay safe.
        _redact.filter(record)
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": strip_query_strings(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key in _STANDARD_ATTRIBUTES or key.startswith("_") or is_patient_field(key):
                continue
            entry[key] = safe_value(value)
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = self.format_exception(record.exc_info)
        return json.dumps(entry, default=describe_object)

    @staticmethod
    def format_exception(exc_info):
        """Type, message and frames; no local variables, so no patient data held in them."""
        exception_type, exception, trace = exc_info
        return {
            "type": f"{exception_type.__module__}.{exception_type.__qualname__}",
            "message": strip_query_strings(str(exception)),
            "traceback": [f"{frame.filename}:{frame.lineno} in {frame.name}" for frame in traceback.extract_tb(trace)],
        }
