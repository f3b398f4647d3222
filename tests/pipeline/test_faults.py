"""Fault tests with real processes: Redis as broker, real ``celery worker`` processes, PostgreSQL.

Each test starts its own Redis (so it can restart it) and its own workers; the database is a fresh
one on the shared PostgreSQL server, migrated once for the module (the outage test copies it into
a PostgreSQL cluster of its own, because it stops that server). The test process never talks to
these through Django: it seeds with ``tests.pipeline.fault_driver`` in a subprocess configured like
the workers, and reads results with plain SQL, so it runs the same under SQLite or PostgreSQL.
"""

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPOSITORY = Path(__file__).resolve().parents[2]
SHARED_POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
FINAL_STATUSES = {"succeeded", "failed"}


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def connect(dbname="postgres", **server):
    import psycopg2

    connection = psycopg2.connect(dbname=dbname, connect_timeout=3, **{**SHARED_POSTGRES, **server})
    connection.autocommit = True
    try:
        yield connection
    finally:
        connection.close()


def execute(connection, sql, parameters=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, parameters)
        return cursor.fetchall() if cursor.description else None


def shared_postgres_reason():
    try:
        with connect():
            pass
    except Exception as error:
        return f"the shared PostgreSQL at 127.0.0.1:5432 is not reachable ({error})"
    if shutil.which("redis-server") is None:
        return "redis-server is not installed"
    return None


@dataclass
class Redis:
    port: int
    directory: Path
    process: subprocess.Popen = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--appendonly", "yes",
             "--appendfsync", "always", "--dir", str(self.directory), "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: self.ping(), timeout=10, what="redis to start")

    def ping(self):
        with socket.socket() as client:
            try:
                client.connect(("127.0.0.1", self.port))
                client.sendall(b"PING\r\n")
                return client.recv(16).startswith(b"+PONG")
            except OSError:
                return False

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # redis saves the append-only file on SIGTERM
            self.process.wait(timeout=15)


@dataclass
class Environment:
    database_url: str
    dsn: dict
    work_dir: Path
    tracking_uri: str
    workers: list = field(default_factory=list)

    def variables(self, redis):
        environment = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_", "CELERY_"))}
        environment.update({
            "DJANGO_SETTINGS_MODULE": "portal.settings.local",
            "DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": redis.url,
            # Short, so that a job held by a killed worker comes back within the test.
            "CELERY_VISIBILITY_TIMEOUT": "20",
            "CELERY_UNACKED_RESTORE_INTERVAL": "2",
            "CELERY_UNACKED_RESTORE_THROTTLE": "1",
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "RADASSIST_VAR_DIR": str(self.work_dir / "var"),
            "RADASSIST_MEDIA_ROOT": str(self.work_dir / "media"),
            "RADASSIST_ANALYSIS_RETRY_BACKOFF_SECONDS": "1",
            "RADASSIST_ANALYSIS_RETRY_BACKOFF_MAX_SECONDS": "4",
            "RADASSIST_ANALYSIS_MAX_RETRIES": "20",
            "RADASSIST_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
        })
        return environment

    def seed(self, redis, *, series, slices=8, size=64):
        output = subprocess.run(
            [sys.executable, "-m", "tests.pipeline.fault_driver", "--series", str(series), "--slices", str(slices),
             "--size", str(size)],
            cwd=REPOSITORY, env=self.variables(redis), capture_output=True, text=True, timeout=120, check=True,
        )
        return json.loads(output.stdout.strip().splitlines()[-1])

    def start_worker(self, redis, *, queues="gpu,reports"):
        number = len(self.workers) + 1
        log = open(self.work_dir / f"worker-{number}.log", "w")  # noqa: SIM115 (closed with the worker)
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "celery_app", "worker", "-Q", queues, "--concurrency", "1",
             "--prefetch-multiplier", "1", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-n", f"fault{number}-{os.getpid()}@%h", "--loglevel", "WARNING"],
            cwd=REPOSITORY, env=self.variables(redis), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        process.log = log
        self.workers.append(process)
        return process

    def kill_worker(self, process, sig=signal.SIGKILL):
        if process.poll() is None:
            os.killpg(process.pid, sig)
        process.wait(timeout=30)
        process.log.close()

    def stop_workers(self):
        for process in self.workers:
            if process.poll() is None:
                self.kill_worker(process, signal.SIGTERM)
        self.workers.clear()

    def rows(self, sql, parameters=()):
        with connect(**self.dsn) as connection:
            return execute(connection, sql, parameters)

    def analyses(self, analysis_ids):
        rows = self.rows("SELECT id, status, attempts, failure_reason FROM ml_analysis WHERE id = ANY(%s)",
                         (list(analysis_ids),))
        return {row[0]: {"status": row[1], "attempts": row[2], "reason": row[3]} for row in rows}

    def reports_per_analysis(self, analysis_ids):
        """Report drafts per analysis's study: each phantom series has a study of its own."""
        rows = self.rows(
            "SELECT a.id, count(r.id) FROM ml_analysis a JOIN scans_series s ON s.id = a.series_id "
            "LEFT JOIN reports_report r ON r.study_id = s.study_id WHERE a.id = ANY(%s) GROUP BY a.id",
            (list(analysis_ids),),
        )
        return dict(rows)

    def worker_logs(self):
        return "\n".join(path.read_text()[-3000:] for path in sorted(self.work_dir.glob("worker-*.log")))


def wait_until(condition, *, timeout, what, interval=0.2, diagnostics=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{diagnostics()}")


@pytest.fixture(scope="module")
def migrated_database(tiny_model_store):
    reason = shared_postgres_reason()
    if reason:
        pytest.skip(f"fault tests need PostgreSQL and Redis: {reason}")
    name = f"radassist_faults_{os.getpid()}"
    with connect() as connection:
        execute(connection, f'DROP DATABASE IF EXISTS "{name}"')
        execute(connection, f'CREATE DATABASE "{name}"')
    database_url = f"postgres://postgres@127.0.0.1:5432/{name}"
    environment = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "portal.settings.local"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=REPOSITORY, env=environment,
                   check=True, timeout=300)
    yield name, database_url
    with connect() as connection:
        execute(connection, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def environment(migrated_database, tiny_model_store, tmp_path):
    _, database_url = migrated_database
    environment = Environment(database_url=database_url, dsn={"dbname": migrated_database[0]}, work_dir=tmp_path,
                              tracking_uri=tiny_model_store)
    yield environment
    environment.stop_workers()


@pytest.fixture
def redis(tmp_path):
    server = Redis(port=free_port(), directory=tmp_path / "redis")
    server.directory.mkdir()
    server.start()
    yield server
    server.stop()


def all_final(environment, analysis_ids):
    analyses = environment.analyses(analysis_ids)
    return len(analyses) == len(analysis_ids) and all(a["status"] in FINAL_STATUSES for a in analyses.values())


def test_worker_killed_mid_analysis_is_completed_exactly_once_by_another(redis, environment):
    [analysis_id] = environment.seed(redis, series=1)
    first = environment.start_worker(redis)
    wait_until(lambda: environment.analyses([analysis_id])[analysis_id]["status"] == "running", timeout=60,
               what="the first worker to start the analysis", interval=0.05, diagnostics=environment.worker_logs)
    environment.kill_worker(first)  # SIGKILL to the worker's whole process group: parent and pool child
    assert environment.analyses([analysis_id])[analysis_id]["status"] == "running"

    environment.start_worker(redis)
    wait_until(lambda: all_final(environment, [analysis_id]), timeout=120, what="the second worker to finish",
               diagnostics=environment.worker_logs)
    analysis = environment.analyses([analysis_id])[analysis_id]
    assert analysis["status"] == "succeeded", analysis["reason"]
    assert analysis["attempts"] == 2
    wait_until(lambda: environment.reports_per_analysis([analysis_id])[analysis_id] >= 1, timeout=60,
               what="the report draft", diagnostics=environment.worker_logs)
    time.sleep(2)  # a duplicate delivery would show up here
    assert environment.reports_per_analysis([analysis_id]) == {analysis_id: 1}
    assert environment.rows("SELECT count(*) FROM ml_analysis a JOIN ml_analysis b ON a.series_id = b.series_id "
                            "WHERE a.id = %s", (analysis_id,)) == [(1,)]


def test_redis_restarted_with_jobs_queued_loses_none(redis, environment):
    analysis_ids = environment.seed(redis, series=3, slices=4)
    redis.stop()
    redis.start()  # the queued messages come back from the append-only file
    environment.start_worker(redis)
    wait_until(lambda: any(a["status"] == "running" for a in environment.analyses(analysis_ids).values())
               or all_final(environment, analysis_ids), timeout=60, what="the first analysis to start",
               interval=0.05, diagnostics=environment.worker_logs)
    redis.stop()  # and once more while the worker is busy with the rest of the queue
    time.sleep(1)
    redis.start()
    wait_until(lambda: all_final(environment, analysis_ids), timeout=120, what="every analysis to finish",
               diagnostics=environment.worker_logs)
    assert {a["status"] for a in environment.analyses(analysis_ids).values()} == {"succeeded"}


def test_twenty_series_at_once_all_reach_a_final_state(redis, environment):
    analysis_ids = environment.seed(redis, series=20, slices=4, size=48)
    environment.start_worker(redis, queues="gpu")
    wait_until(lambda: all_final(environment, analysis_ids), timeout=150, what="all 20 analyses to finish",
               interval=0.5, diagnostics=environment.worker_logs)
    statuses = environment.rows(
        "SELECT s.status, count(*) FROM scans_series s JOIN ml_analysis a ON a.series_id = s.id "
        "WHERE a.id = ANY(%s) GROUP BY s.status", (analysis_ids,),
    )
    assert dict(statuses) == {"analysed": 20}


# PostgreSQL outage: a cluster of our own, copied from the migrated database ---------------------------

def postgres_binaries():
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda path: int(path.split("/")[-2]))
    return Path(candidates[-1]) if candidates else None


@contextmanager
def own_postgres_cluster():
    binaries = postgres_binaries()
    if binaries is None or shutil.which("runuser") is None or os.geteuid() != 0:
        pytest.skip("the PostgreSQL outage test needs the PostgreSQL server binaries and root (to run them as "
                    "the postgres user), to start a server it may stop")
    directory = Path(tempfile.mkdtemp(prefix="radassist-pg-", dir="/tmp"))
    shutil.chown(directory, user="postgres")
    port = free_port()
    data = directory / "data"

    def as_postgres(*command, check=True):
        return subprocess.run(["runuser", "-u", "postgres", "--", *map(str, command)], check=check,
                              capture_output=True, text=True, timeout=120)

    def pg_ctl(action):
        options = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        return as_postgres(binaries / "pg_ctl", "-D", data, "-o", options, "-l", directory / "server.log", "-w",
                           "-m", "fast", action)

    as_postgres(binaries / "initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
    pg_ctl("start")
    try:
        yield port, binaries, pg_ctl
    finally:
        pg_ctl("stop")
        shutil.rmtree(directory, ignore_errors=True)


def test_database_stopped_during_an_analysis_is_retried_and_completes(migrated_database, tiny_model_store,
                                                                       tmp_path, redis):
    name, _ = migrated_database
    with own_postgres_cluster() as (port, binaries, pg_ctl):
        dump = subprocess.run([binaries / "pg_dump", "-h", "127.0.0.1", "-U", "postgres", "--no-owner", name],
                              check=True, capture_output=True, timeout=120).stdout
        with connect(port=port) as connection:
            execute(connection, f'CREATE DATABASE "{name}"')
        subprocess.run([binaries / "psql", "-q", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", name,
                        "-v", "ON_ERROR_STOP=1"], input=dump, check=True, capture_output=True, timeout=120)
        environment = Environment(database_url=f"postgres://postgres@127.0.0.1:{port}/{name}",
                                  dsn={"dbname": name, "port": port}, work_dir=tmp_path, tracking_uri=tiny_model_store)
        try:
            [analysis_id] = environment.seed(redis, series=1)
            environment.start_worker(redis, queues="gpu")
            wait_until(lambda: environment.analyses([analysis_id])[analysis_id]["status"] == "running", timeout=60,
                       what="the analysis to start", interval=0.05, diagnostics=environment.worker_logs)
            pg_ctl("stop")
            time.sleep(4)
            pg_ctl("start")
            wait_until(lambda: all_final(environment, [analysis_id]), timeout=120,
                       what="the analysis to finish after the outage", diagnostics=environment.worker_logs)
            analysis = environment.analyses([analysis_id])[analysis_id]
            assert analysis["status"] == "succeeded", analysis["reason"]
            assert "OperationalError" in environment.worker_logs() or analysis["attempts"] >= 1
        finally:
            environment.stop_workers()
