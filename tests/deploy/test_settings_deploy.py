"""Production settings: ``check --deploy`` has nothing to say; a missing or weak secret, a missing service or
DEBUG stops the start."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def production_environment(tmp_path, **overrides):
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "AWS_", "RADASSIST_"))
    }
    environment.update(
        DJANGO_SETTINGS_MODULE="portal.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="portal.hospital.example",
        DJANGO_CSRF_TRUSTED_ORIGINS="https://portal.hospital.example",
        RADASSIST_VAR_DIR=str(tmp_path),
        AWS_STORAGE_BUCKET_NAME="radassist",
        AWS_S3_ENDPOINT_URL="http://127.0.0.1:9",
        AWS_ACCESS_KEY_ID="radassist",
        AWS_SECRET_ACCESS_KEY="radassist-secret",
        # Never reached: check and shell connect to none of these services.
        DATABASE_URL="postgres://radassist@127.0.0.1:9/radassist",
        CELERY_BROKER_URL="redis://127.0.0.1:9/0",
        MLFLOW_TRACKING_URI="http://127.0.0.1:9",
        EMAIL_URL="smtp://127.0.0.1:9",
        CACHE_URL="redis://127.0.0.1:9/1",
    )
    environment.update(overrides)
    return {key: value for key, value in environment.items() if value is not None}


def manage(environment, *arguments):
    return subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_reports_no_warnings_with_production_environment(tmp_path):
    result = manage(production_environment(tmp_path), "check", "--deploy", "--fail-level", "WARNING")

    # drf_spectacular.W00x come from API views and serializers: give them types or exclude them from the schema.
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_values_come_from_the_environment(tmp_path):
    script = (
        "from django.conf import settings as s;"
        "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.CSRF_COOKIE_SECURE,"
        " s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS > 0, s.SECURE_REFERRER_POLICY,"
        " s.ALLOWED_HOSTS, s.CSRF_TRUSTED_ORIGINS, s.STORAGES['default']['BACKEND'])"
    )
    result = manage(production_environment(tmp_path), "shell", "--no-imports", "-c", script)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == [
        "False", "True", "True", "True", "True", "True", "same-origin",
        "['portal.hospital.example']", "['https://portal.hospital.example']", "portal.storage.PrivateS3Storage",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "secret_key, expected",
    [(None, "DJANGO_SECRET_KEY"), ("short-and-guessable", "security.W009")],
    ids=["missing", "too-short"],
)
def test_missing_or_weak_secret_key_is_refused(tmp_path, secret_key, expected):
    environment = production_environment(tmp_path, DJANGO_SECRET_KEY=secret_key)
    result = manage(environment, "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode != 0
    assert expected in result.stdout + result.stderr


def test_a_missing_shared_service_is_refused_by_name(tmp_path):
    """Web and workers share only these: an embedded default would split them without a sound."""
    missing = ["DATABASE_URL", "CELERY_BROKER_URL", "MLFLOW_TRACKING_URI", "EMAIL_URL"]
    environment = production_environment(tmp_path, **dict.fromkeys(missing))
    result = manage(environment, "check")

    assert result.returncode != 0
    assert f"need these environment variables: {', '.join(missing)}" in result.stderr


def test_debug_is_refused_in_production(tmp_path):
    result = manage(production_environment(tmp_path, DJANGO_DEBUG="True"), "check")

    assert result.returncode != 0
    assert "DJANGO_DEBUG=True is refused by portal.settings.production" in result.stderr


def test_check_deploy_warns_when_login_limits_would_be_counted_per_process(tmp_path):
    result = manage(production_environment(tmp_path, CACHE_URL="locmemcache://"), "check", "--deploy")
    assert "radassist.W001" in result.stderr + result.stdout


def database_options(tmp_path, **overrides):
    code = "from django.conf import settings; import json; print(json.dumps(settings.DATABASES['default']))"
    environment = production_environment(tmp_path, **overrides)
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"], cwd=REPO_ROOT, env=environment,
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    import json

    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("kind, timeout_ms", [("web", 30000), ("worker", 300000), (None, 0)])
def test_postgresql_connections_run_without_jit_and_with_the_statement_timeout_of_their_process(
    tmp_path, kind, timeout_ms
):
    database = database_options(
        tmp_path, DATABASE_URL="postgres://radassist:secret@db.example:5432/radassist", RADASSIST_PROCESS_KIND=kind
    )
    assert database["OPTIONS"]["options"] == f"-c jit=off -c statement_timeout={timeout_ms}"
    assert database["DISABLE_SERVER_SIDE_CURSORS"] is False


def test_behind_pgbouncer_the_portal_sends_no_connection_options_and_no_server_side_cursors(tmp_path):
    database = database_options(
        tmp_path, DATABASE_URL="postgres://radassist:secret@pgbouncer:6432/radassist",
        DATABASE_BEHIND_PGBOUNCER="True", RADASSIST_PROCESS_KIND="web",
    )
    assert "options" not in database.get("OPTIONS", {})
    assert database["DISABLE_SERVER_SIDE_CURSORS"] is True


def test_sqlite_gets_no_postgresql_options(tmp_path):
    database = database_options(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'portal.sqlite3'}")
    assert "options" not in database.get("OPTIONS", {})
