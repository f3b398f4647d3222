"""The clinic pages read what ingest stored: the same private storage and queued-task capture as tests/scans."""

from tests.scans.conftest import private_storage, queued_analyses, quiet_checks, write_ct_series  # noqa: F401
