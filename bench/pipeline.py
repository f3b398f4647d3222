"""Upload-complete to report-draft time for a 100-slice 512x512 series, per backend, with the stage split.

Backends, each in a throw-away setup with a real ``celery worker`` process serving all three queues:
- embedded: SQLite + the file-system broker (what ``make run`` uses);
- postgres-redis: a fresh database on the PostgreSQL at 127.0.0.1:5432 and a Redis of our own.

The models are the registry's champions (``MLFLOW_TRACKING_URI``; run ``manage.py bootstrap_models``
first). Each backend analyses the series twice: the first run includes the worker loading TensorFlow
and the models (cold), the second is the steady state (warm) that the goal is about: under 40 s on
this 2-core machine. The clock starts when ``queue_analysis`` is called (ingest has just completed the
series) and stops when the report draft exists.

    .venv/bin/python bench/pipeline.py [--slices 100] [--size 512] [--backends embedded,postgres-redis]
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
STAGES = ("queue_wait", "load", "preprocess", "classify", "segment", "measure", "store", "report")
GOAL_SECONDS = 40.0


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def measure_in_this_process(*, slices, size, runs):
    """Child mode: Django is configured from the environment the parent set for one backend."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")
    sys.path.insert(0, str(REPOSITORY))
    import django

    django.setup()
    from django.core.management import call_command

    import celery_app  # noqa: F401

    call_command("migrate", verbosity=0)
    from accounts.models import Hospital, Patient
    from ml.models import Analysis
    from ml.services import queue_analysis
    from reports.models import Report
    from tests.pipeline.builders import store_phantom_series

    hospital, _ = Hospital.objects.get_or_create(slug="bench", defaults={"name": "Bench Hospital"})
    patient, _ = Patient.objects.get_or_create(hospital=hospital, mrn="BENCH0001", defaults={"full_name": "Bench"})
    results = []
    for run in range(runs):
        series, _ = store_phantom_series(hospital=hospital, patient=patient, slices=slices, size=size, seed=run)
        started = time.perf_counter()
        analysis = queue_analysis(series_id=series.pk)
        deadline = time.monotonic() + 900
        while not Report.objects.filter(study_id=series.study_id).exists():
            analysis.refresh_from_db()
            if analysis.status == "failed":
                raise SystemExit(f"analysis failed: {analysis.failure_reason}")
            if time.monotonic() > deadline:
                raise SystemExit("no report draft after 15 minutes")
            time.sleep(0.05)
        total = time.perf_counter() - started
        analysis = Analysis.objects.get(pk=analysis.pk)
        report = Report.objects.filter(study_id=series.study_id).earliest("pk")
        stages = dict(analysis.stage_timings)
        stages["report"] = max((report.created_at - analysis.finished_at).total_seconds(), 0.0)
        results.append({"total": total, "stages": stages, "model_versions": [
            f"{analysis.classifier_name} v{analysis.classifier_version}",
            f"{analysis.segmenter_name} v{analysis.segmenter_version}", "demo" if analysis.is_demo_model else "",
        ]})
    print("RESULT " + json.dumps(results))


def worker_command():
    return [sys.executable, "-m", "celery", "-A", "celery_app", "worker", "-Q", "ingest,gpu,reports",
            "--concurrency", "1", "--prefetch-multiplier", "1", "--without-gossip", "--without-mingle",
            "--without-heartbeat", "--loglevel", "WARNING", "-n", f"bench-{os.getpid()}@%h"]


def run_backend(name, *, slices, size, runs, tracking_uri):
    work_dir = Path(tempfile.mkdtemp(prefix=f"radassist-bench-{name}-"))
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_", "CELERY_"))}
    environment.update({
        "DJANGO_SETTINGS_MODULE": "portal.settings.local", "RADASSIST_VAR_DIR": str(work_dir / "var"),
        "MLFLOW_TRACKING_URI": tracking_uri, "RADASSIST_LOG_LEVEL": "WARNING", "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": str(REPOSITORY),
    })
    helpers = []
    database = None
    if name == "postgres-redis":
        import psycopg2

        database = f"radassist_bench_{os.getpid()}"
        connection = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres", connect_timeout=3)
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{database}"')
        connection.close()
        port = free_port()
        redis_dir = work_dir / "redis"
        redis_dir.mkdir()
        helpers.append(subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(redis_dir), "--save", ""],
            stdout=subprocess.DEVNULL))
        time.sleep(0.5)
        environment["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{database}"
        environment["CELERY_BROKER_URL"] = f"redis://127.0.0.1:{port}/0"
    # The schema must exist before the worker starts polling the file-system broker or Redis.
    subprocess.run([sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=REPOSITORY, env=environment,
                   check=True)
    worker = subprocess.Popen(worker_command(), cwd=REPOSITORY, env=environment, start_new_session=True)
    try:
        child = subprocess.run(
            [sys.executable, __file__, "--child", "--slices", str(slices), "--size", str(size), "--runs", str(runs)],
            cwd=REPOSITORY, env=environment, capture_output=True, text=True, check=False,
        )
        lines = [line for line in child.stdout.splitlines() if line.startswith("RESULT ")]
        if child.returncode or not lines:
            raise SystemExit(f"{name}: benchmark run failed\n{child.stdout[-2000:]}\n{child.stderr[-4000:]}")
        return json.loads(lines[-1].removeprefix("RESULT "))
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        for helper in helpers:
            helper.terminate()
            helper.wait(timeout=30)
        if database:
            import psycopg2

            connection = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            connection.close()
        shutil.rmtree(work_dir, ignore_errors=True)


def print_run(label, run):
    stages = run["stages"]
    split = "  ".join(f"{stage} {stages.get(stage, 0.0):6.2f}" for stage in STAGES)
    print(f"  {label:5s} total {run['total']:6.2f} s   {split}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slices", type=int, default=100)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=2, help="Series per backend (the first is the cold one).")
    parser.add_argument("--backends", default="embedded,postgres-redis")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        measure_in_this_process(slices=arguments.slices, size=arguments.size, runs=arguments.runs)
        return

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")
    sys.path.insert(0, str(REPOSITORY))
    import django

    django.setup()
    from django.conf import settings

    from ml.services import ModelsNotInstalled, champion_model_versions

    try:
        versions = champion_model_versions()
    except ModelsNotInstalled:
        raise SystemExit("No champion models: run `.venv/bin/python manage.py bootstrap_models` first.") from None
    print(f"pipeline benchmark: {arguments.slices} slices of {arguments.size}x{arguments.size}, "
          f"{os.cpu_count()} CPUs, models {versions.classifier_name} v{versions.classifier_version} + "
          f"{versions.segmenter_name} v{versions.segmenter_version}{' (demo)' if versions.is_demo else ''}")
    warm_totals = {}
    for backend in arguments.backends.split(","):
        runs = run_backend(backend, slices=arguments.slices, size=arguments.size, runs=arguments.runs,
                           tracking_uri=settings.MLFLOW_TRACKING_URI)
        print(f"{backend}: upload complete -> report draft, seconds")
        for index, run in enumerate(runs):
            print_run("cold" if index == 0 else "warm", run)
        warm = runs[-1]
        inference = warm["stages"].get("classify", 0) + warm["stages"].get("segment", 0)
        warm_totals[backend] = warm["total"]
        print(f"  {arguments.slices / warm['total']:.1f} slices/s end to end; inference is "
              f"{inference / warm['total']:.0%} of the total; goal < {GOAL_SECONDS:.0f} s: "
              f"{'met' if warm['total'] < GOAL_SECONDS else 'NOT met'}")
    if len(warm_totals) == 2:
        embedded, server = warm_totals.get("embedded"), warm_totals.get("postgres-redis")
        if embedded and server:
            print(f"postgres-redis / embedded (warm) = {server / embedded:.2f}")


if __name__ == "__main__":
    main()
