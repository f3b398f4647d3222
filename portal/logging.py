"""Structured (JSON) logs that carry no patient names or birth dates."""

import json
import logging

#: Record attributes that may hold patient-identifying data; they never reach a log line.
PATIENT_FIELDS = frozenset({"patient_name", "birth_date", "patient_birth_date", "PatientName", "PatientBirthDate"})
_STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class RedactPatientDataFilter(logging.Filter):
    def filter(self, record):
        for field in PATIENT_FIELDS & set(vars(record)):
            setattr(record, field, "[redacted]")
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record):
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)
