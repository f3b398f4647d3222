"""schemathesis against the live test server: generated requests to every read operation, no server error.

Bounded so that it fits the suite: ``EXAMPLES_PER_OPERATION`` generated requests per GET operation of
the OpenAPI schema, with a North API key, against a hospital that has a patient, a study, a series
and instances. Writes (uploads, reanalysis) are left out: they queue work and write files.
"""

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase

from tests.pipeline.builders import store_phantom_series

EXAMPLES_PER_OPERATION = 15


@pytest.fixture(autouse=True)
def fast_password_hashing_and_private_storage(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media"), "base_url": None},
        },
    }


def test_generated_requests_to_every_read_operation_cause_no_server_error(transactional_db, live_server, north):
    store_phantom_series(hospital=north.hospital, patient=north.patient, slices=2, size=16)
    headers = {"Authorization": f"Bearer {north.api_secret}"}
    raw_schema = requests.get(f"{live_server.url}/api/schema/?format=json", headers=headers, timeout=30)
    assert raw_schema.status_code == 200
    schema = schemathesis.openapi.from_dict(raw_schema.json())

    server_errors = []
    operations = [result.ok() for result in schema.get_all_operations()]
    reads = [operation for operation in operations if operation.method.upper() == "GET"]
    assert len(reads) >= 10

    for operation in reads:
        @hypothesis.settings(
            max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
            phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
        )
        @hypothesis.given(case=operation.as_strategy())
        def call(case):
            response = case.call(base_url=live_server.url, headers=headers, timeout=30)
            if response.status_code >= 500:
                server_errors.append(f"{case.method} {response.request.url} -> {response.status_code}")

        call()
    assert server_errors == []
