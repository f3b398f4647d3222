"""Hospital-scale benchmark: list pages and list endpoints at full volume and at 1% of it.

Loads a synthetic hospital through the models' own tables (PostgreSQL COPY with every column the
model declares, so a new field with a default needs no change here) into a database of its own on
the server named by ``DATABASE_URL`` (created, migrated, dropped at the end), and a second database
with 1% of the rows loaded the same way. Then it asks both, in-process with Django's test client and a
logged-in doctor (the admin pages as the hospital admin), for the worklist (first page, a name
search, a status filter, a late page), the REST lists of studies, series and instances (a deep
cursor for instances), QIDO-RS studies with a deep offset and the admin changelists of users,
patients and studies; prints median and 95th percentile of each, and the ratio full/1% of the
medians. A page that costs what one page costs has a ratio near 1.

The last line reads ``worst_ratio=<x> endpoint=<name> worklist_first_page_ms=<y>``.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/scale.py
    ... bench/scale.py --scale 0.1     # a tenth of the default volume (100,000 instances)
    ... bench/scale.py --runs 21 --keep   # more runs; keep both databases for EXPLAIN afterwards

Default volume: 2 hospitals, 20,000 patients, 50,000 studies, 100,000 series, 1,000,000 instances
(the doctor's hospital holds half of it).
"""

import argparse
import base64
import datetime
import io
import os
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

PATIENTS, STUDIES, SERIES_PER_STUDY, INSTANCES_PER_SERIES = 20_000, 50_000, 2, 10
USERS_PER_HOSPITAL = 100
SURNAMES = ["Smith", "Jones", "Garcia", "Miller", "Davis", "Martin", "Bernard", "Dubois", "Rossi", "Novak",
            "Kowalski", "Nielsen", "Schmidt", "Weber", "Costa", "Silva", "Haddad", "Tanaka", "Kim", "Okafor"]
GIVEN = ["Anna", "Ben", "Chloe", "David", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Lea", "Marc"]
PASSWORD = "bench-password-123"


def server_url(database_url, name):
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def admin_connection(database_url):
    import psycopg2

    connection = psycopg2.connect(server_url(database_url, "postgres"))
    connection.autocommit = True
    return connection


def create_database(database_url, name):
    connection = admin_connection(database_url)
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()


def drop_database(database_url, name):
    connection = admin_connection(database_url)
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    connection.close()


def use_database(name):
    """Point Django's default connection at another database of the same server."""
    from django.db import connection

    connection.close()
    connection.settings_dict["NAME"] = name


def copy_value(value):
    if value is None:
        return r"\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, (dict, list)):
        import json

        value = json.dumps(value)
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


class Copier:
    """COPY rows into a model's table: every concrete column, each row's values over the model's defaults."""

    def __init__(self, model):
        from django.utils import timezone

        now = timezone.now()
        self.model = model
        self.fields = [field for field in model._meta.concrete_fields if not field.generated]
        self.template = {}
        for field in self.fields:
            if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                self.template[field.attname] = now
            elif field.has_default():
                self.template[field.attname] = field.get_default()
            elif field.null:
                self.template[field.attname] = None
            elif field.get_internal_type() in ("CharField", "TextField", "FileField", "SlugField", "EmailField"):
                self.template[field.attname] = ""
            else:
                self.template[field.attname] = None

    def copy(self, rows):
        from django.db import connection

        columns = [field.column for field in self.fields]
        attnames = [field.attname for field in self.fields]
        buffer = io.StringIO()
        count = 0
        with connection.cursor() as cursor:
            for row in rows:
                values = {**self.template, **row}
                buffer.write("\t".join(copy_value(values[name]) for name in attnames))
                buffer.write("\n")
                count += 1
                if count % 50_000 == 0:
                    self._flush(cursor, columns, buffer)
                    buffer = io.StringIO()
            self._flush(cursor, columns, buffer)
            table = self.model._meta.db_table
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 1)) FROM {table}"
            )
        return count

    def _flush(self, cursor, columns, buffer):
        buffer.seek(0)
        quoted = ", ".join(f'"{column}"' for column in columns)
        cursor.cursor.copy_expert(f'COPY "{self.model._meta.db_table}" ({quoted}) FROM STDIN', buffer)


def load_hospital(fraction, *, seed=7):
    """Two hospitals with ``fraction`` of the default volume; returns the doctor and the admin of the first."""
    from django.contrib.auth.hashers import make_password
    from django.db import connection

    from accounts.models import Hospital, Patient, Role, User
    from ml.models import Analysis, AnalysisStatus
    from reports.models import Report, ReportVersion, VersionStatus
    from scans.models import Instance, Series, SeriesStatus, Study

    random_numbers = random.Random(seed)
    hospitals = [Hospital.objects.create(name=f"Bench Hospital {n}", slug=f"bench-{n}") for n in (1, 2)]
    doctor = User.objects.create_user("doctor@bench.test", PASSWORD, hospital=hospitals[0], role=Role.DOCTOR,
                                      full_name="Bench Doctor")
    admin = User.objects.create_user("admin@bench.test", PASSWORD, hospital=hospitals[0],
                                     role=Role.HOSPITAL_ADMIN, full_name="Bench Admin")
    password_hash = make_password(PASSWORD)
    users = max(10, int(USERS_PER_HOSPITAL * 10 * fraction))
    start_id = User.objects.order_by("-pk").first().pk + 1
    Copier(User).copy(
        {"id": start_id + n, "email": f"user{n}@bench.test", "full_name": f"User {n}", "password": password_hash,
         "hospital_id": hospitals[n % 2].pk, "role": Role.DOCTOR, "is_staff": False, "is_superuser": False}
        for n in range(users)
    )
    patients = max(20, int(PATIENTS * fraction))
    studies = max(50, int(STUDIES * fraction))
    series_total = studies * SERIES_PER_STUDY
    Copier(Patient).copy(
        {"id": n + 1, "hospital_id": hospitals[n % 2].pk, "mrn": f"MRN{n:07d}",
         "full_name": f"{GIVEN[n % len(GIVEN)]} {SURNAMES[(n // 7) % len(SURNAMES)]}{n // 140}",
         "birth_date": datetime.date(1940, 1, 1) + datetime.timedelta(days=n % 20000), "sex": "FM"[n % 2]}
        for n in range(patients)
    )
    first_day = datetime.date(2019, 1, 1)
    study_rows, series_rows, analysis_rows, report_rows, version_rows = [], [], [], [], []
    for n in range(studies):
        patient_index = random_numbers.randrange(patients // 2) * 2 + (n % 2)
        hospital_id = hospitals[patient_index % 2].pk
        study_id = n + 1
        study_rows.append({
            "id": study_id, "hospital_id": hospital_id, "patient_id": patient_index + 1,
            "study_instance_uid": f"1.2.826.0.1.3680043.10.{n}", "accession_number": f"ACC{n:08d}",
            "study_date": first_day + datetime.timedelta(days=random_numbers.randrange(2500)),
            "description": "CT CHEST",
        })
        draw = random_numbers.random()
        if draw < 0.01:
            status = SeriesStatus.RECEIVING
        elif draw < 0.03:
            status = SeriesStatus.FAILED
        else:
            status = SeriesStatus.REPORTED
        for k in range(SERIES_PER_STUDY):
            series_id = n * SERIES_PER_STUDY + k + 1
            series_rows.append({
                "id": series_id, "hospital_id": hospital_id, "study_id": study_id,
                "series_instance_uid": f"1.2.826.0.1.3680043.11.{series_id}", "series_number": k + 1,
                "modality": "CT", "body_part": "CHEST", "status": status,
                "slices_total": INSTANCES_PER_SERIES, "slices_done": INSTANCES_PER_SERIES,
            })
            if status == SeriesStatus.REPORTED:
                analysis_rows.append({
                    "id": series_id, "hospital_id": hospital_id, "series_id": series_id,
                    "classifier_name": "bench-classifier", "classifier_version": "1",
                    "segmenter_name": "bench-segmenter", "segmenter_version": "1",
                    "status": AnalysisStatus.SUCCEEDED, "predicted_class": "normal",
                })
        if status == SeriesStatus.REPORTED:
            report_rows.append({"id": study_id, "hospital_id": hospital_id, "study_id": study_id})
            version_rows.append({
                "id": study_id, "hospital_id": hospital_id, "report_id": study_id, "number": 1,
                "status": VersionStatus.DRAFT if random_numbers.random() < 0.05 else VersionStatus.FINAL,
            })
    Copier(Study).copy(study_rows)
    Copier(Series).copy(series_rows)
    Copier(Analysis).copy(analysis_rows)
    Copier(Report).copy(report_rows)
    Copier(ReportVersion).copy(version_rows)
    Copier(Instance).copy(
        {"id": (series_id - 1) * INSTANCES_PER_SERIES + position + 1, "hospital_id": row["hospital_id"],
         "series_id": series_id, "sop_instance_uid": f"1.2.826.0.1.3680043.12.{series_id}.{position}",
         "sop_class_uid": "1.2.840.10008.5.1.4.1.1.2", "transfer_syntax_uid": "1.2.840.10008.1.2.1",
         "instance_number": position + 1, "file": f"hospitals/{row['hospital_id']}/bench/{series_id}/{position}.dcm",
         "file_size": 526_000, "sha256": "0" * 64, "rows": 512, "columns": 512, "pixel_spacing": [0.7, 0.7],
         "slice_thickness": 1.0, "slice_location": float(position)}
        for row in series_rows for series_id in (row["id"],) for position in range(INSTANCES_PER_SERIES)
    )
    refresh_stored_summaries()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return doctor, admin, {"patients": patients, "studies": studies, "series": series_total,
                           "instances": series_total * INSTANCES_PER_SERIES, "users": users + 2}


def refresh_stored_summaries():
    """Fill the columns the portal keeps at write time (counts, review state) for the loaded rows."""
    from reports.models import refresh_review_states

    refresh_review_states()


def endpoints(volume):
    """(name, path, login) of each measured request; deep pages scale with the volume loaded."""
    doctor_studies = volume["studies"] // 2
    late_page = max(2, int(doctor_studies / 50 * 0.8))
    # The instance list pages by cursor: a deep page is the one that starts at the series 80% of the way in.
    deep_instances_cursor = base64.b64encode(urlencode({"p": int(volume["series"] * 0.8)}).encode()).decode()
    deep_studies = int(doctor_studies * 0.8)
    return [
        ("worklist_first_page", "/worklist/", "doctor"),
        ("worklist_search", "/worklist/?q=Garcia1", "doctor"),
        ("worklist_status_failed", "/worklist/?status=failed", "doctor"),
        ("worklist_late_page", f"/worklist/?page={late_page}", "doctor"),
        ("api_studies", "/api/v1/studies/", "doctor"),
        ("api_series", "/api/v1/series/", "doctor"),
        ("api_instances_deep", f"/api/v1/instances/?{urlencode({'cursor': deep_instances_cursor})}", "doctor"),
        ("qido_studies_deep", f"/dicomweb/studies?offset={deep_studies}&limit=50", "doctor"),
        ("admin_users", "/admin/accounts/user/", "admin"),
        ("admin_patients", "/admin/accounts/patient/", "admin"),
        ("admin_studies", "/admin/scans/study/", "admin"),
    ]


def measure(volume, runs):
    from django.test import Client

    clients = {}
    for role in ("doctor", "admin"):
        clients[role] = Client(HTTP_ACCEPT="*/*")
        assert clients[role].login(email=f"{role}@bench.test", password=PASSWORD)
    results = {}
    for name, path, role in endpoints(volume):
        client = clients[role]
        accept = {"HTTP_ACCEPT": "application/dicom+json"} if path.startswith("/dicomweb") else {}
        response = client.get(path, **accept)
        if response.status_code != 200:
            raise SystemExit(f"{name}: {path} answered {response.status_code}: {response.content[:300]!r}")
        durations = []
        for _ in range(runs):
            start = time.perf_counter()
            response = client.get(path, **accept)
            durations.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, (name, response.status_code)
        durations.sort()
        results[name] = (statistics.median(durations), durations[max(0, round(0.95 * (len(durations) - 1)))])
        print(f"  {name:26s} median {results[name][0]:8.1f} ms  p95 {results[name][1]:8.1f} ms", flush=True)
    return results


def migrate():
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the default volume (1.0: 1M instances)")
    parser.add_argument("--runs", type=int, default=11, help="timed requests per endpoint (after one warm-up)")
    parser.add_argument("--keep", action="store_true", help="keep both databases afterwards")
    arguments = parser.parse_args()

    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("Set DATABASE_URL to a PostgreSQL server, e.g. postgres://postgres@127.0.0.1:5432/postgres")
    names = {"full": "radassist_scale_bench", "small": "radassist_scale_bench_small"}
    os.environ["DATABASE_URL"] = server_url(database_url, names["full"])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")
    os.environ.setdefault("DJANGO_DEBUG", "False")  # no query log in the measured requests, as in production
    import django

    django.setup()
    results, volumes = {}, {}
    try:
        for label, fraction in (("small", arguments.scale / 100), ("full", arguments.scale)):
            create_database(database_url, names[label])
            use_database(names[label])
            started = time.perf_counter()
            migrate()
            _doctor, _admin, volumes[label] = load_hospital(fraction)
            load_seconds = time.perf_counter() - started
            print(f"{label}: loaded {volumes[label]} in {load_seconds:.1f} s (both hospitals)", flush=True)
            results[label] = measure(volumes[label], arguments.runs)
    finally:
        use_database("postgres")
        from django.db import connection

        connection.close()
        if not arguments.keep:
            for name in names.values():
                drop_database(database_url, name)

    print(f"\n{'endpoint':26s} {'full ms':>9s} {'p95':>9s} {'1% ms':>9s} {'ratio':>7s}")
    ratios = {}
    for name, (median, p95) in results["full"].items():
        ratios[name] = median / results["small"][name][0]
        print(f"{name:26s} {median:9.1f} {p95:9.1f} {results['small'][name][0]:9.1f} {ratios[name]:7.2f}")
    worst = max(ratios, key=ratios.get)
    print(f"worst_ratio={ratios[worst]:.2f} endpoint={worst} "
          f"worklist_first_page_ms={results['full']['worklist_first_page'][0]:.1f}")


if __name__ == "__main__":
    main()
