"""Ingest benchmark: one generated CT series through DICOMweb STOW-RS, the web upload and DICOM C-STORE.

Generates a 16-bit CT series (300 slices of 512x512 by default, about 150 MB) with
``ml.phantoms.write_dicom_series``, then for each path starts a fresh portal web process
(gunicorn, one gthread worker as in docker/gunicorn.conf.py, production settings with DEBUG off,
its own temporary SQLite database, media and broker folders), pushes the series and prints
instances per second and the web worker's peak resident memory (VmHWM from /proc). Goal: web
peak memory under 250 MB whatever the series size, and STOW-RS at least as fast as Orthanc's.

- STOW-RS: dicomweb-client ``store_instances`` in batches (``--batch`` instances per request;
  requests over 1 MB go out with chunked transfer encoding, as dicomweb-client sends them);
- web upload: the browser's request sequence (scans/views.py) with a logged-in session:
  open a batch, POST the files in batches, close the batch;
- DICOM C-STORE (when Debian's dcmtk is installed): dcmtk's ``storescu`` sends the series in one
  association to a fresh ``manage.py run_dicom_listener`` (same temporary database and media as
  above; a registered calling AE title), and the listener's CPU time and peak memory are read;
- Orthanc (when the Debian packages ``orthanc`` and ``orthanc-dicomweb`` are installed): the
  same files through its DICOMweb plugin's STOW-RS with the same client and batches, and through
  its own DICOM C-STORE receiver with the same ``storescu`` command.

Nothing is fetched from the network; every process started here is stopped at the end.

    .venv/bin/python bench/ingest.py                       # the full 300 x 512 x 512 series
    .venv/bin/python bench/ingest.py --slices 40 --size 256 # a quick run
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pydicom
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.data import get_testdata_file

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

ORTHANC_BINARY = "/usr/sbin/Orthanc"
STORESCU = shutil.which("storescu")
BENCH_CALLING_AE_TITLE = "BENCH_CT"
ORTHANC_DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
PEAK_MEMORY_GOAL_MB = 250

#: Run in the portal's environment by ``manage.py shell``: a hospital, a doctor with a session, an API key.
SETUP_SCRIPT = """
import json
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from accounts.models import Hospital, Role, User
from accounts.services import create_api_key, register_dicom_peer

hospital = Hospital.objects.create(slug="bench", name="Benchmark Hospital")
doctor = User.objects.create_user(email="doctor@bench.invalid", password=None, hospital=hospital, role=Role.DOCTOR)
_, secret = create_api_key(hospital=hospital, name="bench")
register_dicom_peer(hospital=hospital, ae_title="BENCH_CT")
session = SessionStore()
session[SESSION_KEY] = str(doctor.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = doctor.get_session_auth_hash()
session.create()
print(json.dumps({"api_secret": secret, "session_key": session.session_key}))
"""


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url, *, process, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode} before answering {url}")
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or still loading the app
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def peak_memory_mb(pid):
    """VmHWM (peak resident set size) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def cpu_seconds(pid):
    """User + system CPU time a process has used so far (utime and stime in /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_pids(pid):
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def stop(process):
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def write_series(directory, *, slices, size):
    from ml.phantoms import generate_phantom_series, write_dicom_series

    phantom = generate_phantom_series(label="adenocarcinoma", slices=slices, size=size, seed=7)
    return write_dicom_series(phantom, directory, patient_id="BENCH-0001", patient_name="Bench^Patient")


def batches(items, size):
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Portal:
    """A portal web process of its own: temporary database, media and broker, gunicorn on a free port."""

    def __init__(self, workspace):
        self.workspace = workspace
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.environment = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{workspace / 'portal.sqlite3'}",
            "RADASSIST_VAR_DIR": str(workspace / "var"),
            "RADASSIST_MEDIA_ROOT": str(workspace / "media"),
            "RADASSIST_UPLOAD_TEMP_DIR": str(workspace / "upload-tmp"),
            "RADASSIST_REQUIRE_MFA_FOR_STAFF": "false",
            # Development settings with DEBUG off (no query log, no debug pages); plain HTTP on the loopback.
            "DJANGO_SETTINGS_MODULE": "portal.settings.local",
            "DJANGO_DEBUG": "false",
            "DATABASE_CONN_MAX_AGE": "60",  # as docker/env.example
            "PYTHONUNBUFFERED": "1",
        }
        (workspace / "upload-tmp").mkdir(parents=True, exist_ok=True)
        self.process = None

    def manage(self, *arguments):
        return subprocess.run(
            [sys.executable, "manage.py", *arguments], cwd=REPOSITORY, env=self.environment,
            check=True, capture_output=True, text=True,
        ).stdout

    def __enter__(self):
        self.manage("migrate", "--noinput")
        output = self.manage("shell", "-c", SETUP_SCRIPT)
        self.credentials = json.loads(output.strip().splitlines()[-1])
        self.log = open(self.workspace / "gunicorn.log", "w")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", "portal.wsgi:application",
                "--bind", f"127.0.0.1:{self.port}", "--workers", "1", "--worker-class", "gthread",
                "--threads", "4", "--timeout", "600",
            ],
            cwd=REPOSITORY, env=self.environment, stdout=self.log, stderr=subprocess.STDOUT,
        )
        wait_until_up(f"{self.url}/health/", process=self.process)
        # One untimed STOW-RS of pydicom's CT_small.dcm (a study of its own) loads the views, pydicom and
        # the task queue client, as a server that has been running a while would have them.
        DICOMwebClient(
            url=f"{self.url}/dicomweb", headers={"Authorization": f"Bearer {self.credentials['api_secret']}"}
        ).store_instances([pydicom.dcmread(get_testdata_file("CT_small.dcm"))])
        return self

    def worker_pid(self):
        (pid,) = child_pids(self.process.pid)  # one gunicorn worker
        return pid

    def worker_peak_memory_mb(self):
        return peak_memory_mb(self.worker_pid())

    def __exit__(self, *exc_info):
        stop(self.process)
        self.log.close()


class Listener(Portal):
    """A DICOM listener process of its own (``run_dicom_listener``), on the same kind of temporary portal."""

    def __enter__(self):
        self.manage("migrate", "--noinput")
        self.manage("shell", "-c", SETUP_SCRIPT)
        self.ae_title = "BENCH"  # the bench hospital's slug in capitals
        self.log = open(self.workspace / "listener.log", "w")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "run_dicom_listener", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=REPOSITORY, env=self.environment, stdout=self.log, stderr=subprocess.STDOUT,
        )
        wait_until_listening(self.port, process=self.process)
        # One untimed C-STORE of pydicom's CT_small.dcm (a study of its own) loads pydicom, the ingest and
        # the task queue client, as a listener that has been running a while would have them.
        storescu(self.port, self.ae_title, [Path(get_testdata_file("CT_small.dcm"))])
        return self

    def listener_pid(self):
        return self.process.pid


def wait_until_listening(port, *, process, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the listener exited with code {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def storescu(port, called_ae_title, paths):
    """dcmtk's storescu: every file in one association; returns the seconds it took. Raises if any store failed."""
    started = time.perf_counter()
    subprocess.run(
        [STORESCU, "-aet", BENCH_CALLING_AE_TITLE, "-aec", called_ae_title, "127.0.0.1", str(port),
         *[str(path) for path in paths]],
        check=True, capture_output=True,
    )
    return time.perf_counter() - started


def c_store(listener, paths):
    """Returns (seconds, stored, listener CPU seconds, listener peak MB)."""
    cpu_before = cpu_seconds(listener.listener_pid())
    seconds = storescu(listener.port, listener.ae_title, paths)
    cpu = cpu_seconds(listener.listener_pid()) - cpu_before
    stored = int(listener.manage(
        "shell", "-c", "from scans.models import Instance; print(Instance.objects.count() - 1)"
    ).strip().splitlines()[-1])
    return seconds, stored, cpu, peak_memory_mb(listener.listener_pid())


def stow_rs(url, datasets, *, batch_size, server_pid, headers=None):
    """Store through STOW-RS in batches; returns (seconds, instances stored, server CPU seconds)."""
    client = DICOMwebClient(url=url, headers=headers or {})
    stored = 0
    cpu_before = cpu_seconds(server_pid)
    started = time.perf_counter()
    for batch in batches(datasets, batch_size):
        answer = client.store_instances(batch)
        stored += len(answer.get("ReferencedSOPSequence", []))
    return time.perf_counter() - started, stored, cpu_seconds(server_pid) - cpu_before


def web_upload(portal, paths, *, batch_size):
    """The browser's sequence with a session: open a batch, POST files in batches, close.

    Returns (seconds for the files, seconds to close, stored, worker peak MB after the files):
    closing completes the series and queues its analysis, which is the pipeline's cost, not upload's.
    """
    session = requests.Session()
    session.cookies.set("sessionid", portal.credentials["session_key"], domain="127.0.0.1")
    session.get(f"{portal.url}/upload/").raise_for_status()
    csrf_token = session.cookies["csrftoken"]
    # Production marks the cookie Secure; over the loopback's plain HTTP the client must be told to send it.
    session.cookies.set("csrftoken", csrf_token, domain="127.0.0.1")
    headers = {"X-CSRFToken": csrf_token, "Referer": f"{portal.url}/upload/"}
    started = time.perf_counter()
    opened = session.post(f"{portal.url}/upload/batches/", data={"patient": ""}, headers=headers)
    opened.raise_for_status()
    links = opened.json()
    for batch in batches(paths, batch_size):
        files = [("files", (path.name, path.read_bytes(), "application/dicom")) for path in batch]
        session.post(portal.url + links["files_url"], files=files, headers=headers).raise_for_status()
    files_seconds = time.perf_counter() - started
    peak_after_files = portal.worker_peak_memory_mb()
    started = time.perf_counter()
    closed = session.post(portal.url + links["close_url"], headers=headers)
    closed.raise_for_status()
    return files_seconds, time.perf_counter() - started, closed.json()["counts"]["stored"], peak_after_files


def orthanc_stow(workspace, datasets, *, batch_size):
    """Orthanc with its DICOMweb plugin on a free port and a storage folder of its own.

    Returns (seconds, stored, server CPU seconds, peak MB).
    """
    port = free_port()
    workspace.mkdir(parents=True, exist_ok=True)
    storage = workspace / "storage"
    configuration = workspace / "orthanc.json"
    configuration.write_text(json.dumps({
        "Name": "bench",
        "StorageDirectory": str(storage),
        "IndexDirectory": str(storage),
        "HttpPort": port,
        "DicomServerEnabled": False,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "Plugins": [ORTHANC_DICOMWEB_PLUGIN],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }))
    log = open(workspace / "orthanc.log", "w")
    process = subprocess.Popen([ORTHANC_BINARY, str(configuration)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/system", process=process)
        seconds, stored, cpu = stow_rs(
            f"http://127.0.0.1:{port}/dicom-web", datasets, batch_size=batch_size, server_pid=process.pid
        )
        return seconds, stored, cpu, peak_memory_mb(process.pid)
    finally:
        stop(process)
        log.close()


def orthanc_c_store(workspace, paths):
    """Orthanc's own DICOM C-STORE receiver on free ports, a storage folder of its own, the same storescu.

    Returns (seconds, stored, server CPU seconds, peak MB).
    """
    http_port, dicom_port = free_port(), free_port()
    workspace.mkdir(parents=True, exist_ok=True)
    storage = workspace / "storage"
    configuration = workspace / "orthanc.json"
    configuration.write_text(json.dumps({
        "Name": "bench",
        "StorageDirectory": str(storage),
        "IndexDirectory": str(storage),
        "HttpPort": http_port,
        "DicomServerEnabled": True,
        "DicomAet": "ORTHANC",
        "DicomPort": dicom_port,
        "DicomCheckCalledAet": False,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
    }))
    log = open(workspace / "orthanc.log", "w")
    process = subprocess.Popen([ORTHANC_BINARY, str(configuration)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_up(f"http://127.0.0.1:{http_port}/system", process=process)
        wait_until_listening(dicom_port, process=process)
        cpu_before = cpu_seconds(process.pid)
        seconds = storescu(dicom_port, "ORTHANC", paths)
        cpu = cpu_seconds(process.pid) - cpu_before
        stored = len(requests.get(f"http://127.0.0.1:{http_port}/instances", timeout=30).json())
        return seconds, stored, cpu, peak_memory_mb(process.pid)
    finally:
        stop(process)
        log.close()


def report(label, seconds, stored, expected, peak_mb=None, cpu=None):
    rate = stored / seconds if seconds else 0.0
    server_cpu = f", server CPU {1000 * cpu / max(stored, 1):5.2f} ms/instance" if cpu is not None else ""
    memory = f", peak RSS {peak_mb:6.1f} MB" if peak_mb is not None else ""
    check = "" if stored == expected else f"  (!! {expected - stored} not stored)"
    print(f"{label:<22} {stored:4d} in {seconds:6.2f} s = {rate:6.1f} instances/s{server_cpu}{memory}{check}")
    return rate


def median(values):
    return statistics.median(values) if values else 0.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512, help="rows and columns of each slice")
    parser.add_argument("--batch", type=int, default=25, help="instances per STOW-RS request / upload POST")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of every path, in turn (the order rotates each round); medians are compared")
    parser.add_argument("--skip-orthanc", action="store_true")
    parser.add_argument("--only", choices=["stow", "web", "c-store"], action="append",
                        help="run only these RadAssist paths (and their Orthanc counterparts); repeatable")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, databases)")
    options = parser.parse_args()

    workspace = Path(tempfile.mkdtemp(prefix="radassist-bench-ingest-"))
    try:
        print(f"Generating {options.slices} slices of {options.size}x{options.size} int16 CT ...", flush=True)
        paths = write_series(workspace / "series", slices=options.slices, size=options.size)
        total_mb = sum(path.stat().st_size for path in paths) / 1e6
        datasets = [pydicom.dcmread(path) for path in paths]
        print(f"Series: {len(paths)} files, {total_mb:.1f} MB; batches of {options.batch}; "
              f"{options.rounds} rounds\n", flush=True)
        if not options.skip_orthanc and not (Path(ORTHANC_BINARY).exists() and Path(ORTHANC_DICOMWEB_PLUGIN).exists()):
            print("Orthanc: not installed here (apt-get install orthanc orthanc-dicomweb); no comparison.")
            options.skip_orthanc = True
        if STORESCU is None:
            print("DICOM C-STORE: dcmtk's storescu is not installed here (apt-get install dcmtk); no C-STORE rows.")
        rates = {"stow": [], "web": [], "orthanc": [], "c_store": [], "orthanc_c_store": []}
        peaks = []

        def run_stow(round_number):
            with Portal(workspace / f"portal-stow-{round_number}") as portal:
                seconds, stored, cpu = stow_rs(
                    f"{portal.url}/dicomweb", datasets, batch_size=options.batch, server_pid=portal.worker_pid(),
                    headers={"Authorization": f"Bearer {portal.credentials['api_secret']}"},
                )
                peak = portal.worker_peak_memory_mb()
            peaks.append(peak)
            rates["stow"].append(report("RadAssist STOW-RS", seconds, stored, len(paths), peak, cpu))

        def run_web(round_number):
            with Portal(workspace / f"portal-web-{round_number}") as portal:
                files_seconds, close_seconds, stored, files_peak = web_upload(portal, paths, batch_size=options.batch)
                peak = portal.worker_peak_memory_mb()
            peaks.append(peak)
            rates["web"].append(report("RadAssist web upload", files_seconds + close_seconds, stored, len(paths), peak))
            print(f"  (closing the batch, which completes the series and queues its analysis: {close_seconds:.2f} s)")

        def run_orthanc(round_number):
            seconds, stored, cpu, peak = orthanc_stow(
                workspace / f"orthanc-{round_number}", datasets, batch_size=options.batch
            )
            rates["orthanc"].append(report("Orthanc STOW-RS", seconds, stored, len(paths), peak, cpu))

        def run_c_store(round_number):
            with Listener(workspace / f"listener-{round_number}") as listener:
                seconds, stored, cpu, peak = c_store(listener, paths)
            rates["c_store"].append(report("RadAssist C-STORE", seconds, stored, len(paths), peak, cpu))

        def run_orthanc_c_store(round_number):
            seconds, stored, cpu, peak = orthanc_c_store(workspace / f"orthanc-dimse-{round_number}", paths)
            rates["orthanc_c_store"].append(report("Orthanc C-STORE", seconds, stored, len(paths), peak, cpu))

        paths_run = {
            "stow": [run_stow] + ([] if options.skip_orthanc else [run_orthanc]),
            "web": [run_web],
            "c-store": ([] if STORESCU is None else [run_c_store])
            + ([] if STORESCU is None or options.skip_orthanc else [run_orthanc_c_store]),
        }
        order = [run for name, runs in paths_run.items() if not options.only or name in options.only for run in runs]
        for round_number in range(options.rounds):
            print(f"Round {round_number + 1}", flush=True)
            shift = round_number % len(order)
            for run in order[shift:] + order[:shift]:
                os.sync()  # the previous run's files reach the disk before this one starts
                run(round_number)

        print("\nMedians:")
        if rates["stow"]:
            print(f"  RadAssist STOW-RS     {median(rates['stow']):7.1f} instances/s")
        if rates["web"]:
            print(f"  RadAssist web upload  {median(rates['web']):7.1f} instances/s")
        if rates["orthanc"] and rates["stow"]:
            print(f"  Orthanc STOW-RS       {median(rates['orthanc']):7.1f} instances/s")
            ratio = median(rates["stow"]) / median(rates["orthanc"])
            print(f"RadAssist STOW-RS / Orthanc STOW-RS speed: {ratio:.2f}x (goal >= 1)")
        if rates["c_store"]:
            print(f"  RadAssist C-STORE     {median(rates['c_store']):7.1f} instances/s")
        if rates["orthanc_c_store"]:
            print(f"  Orthanc C-STORE       {median(rates['orthanc_c_store']):7.1f} instances/s")
        if rates["orthanc_c_store"] and rates["c_store"]:
            ratio = median(rates["c_store"]) / median(rates["orthanc_c_store"])
            print(f"RadAssist C-STORE / Orthanc C-STORE speed: {ratio:.2f}x (goal >= 1)")
        if peaks:
            worst = max(peaks)
            verdict = "met" if worst < PEAK_MEMORY_GOAL_MB else "NOT met"
            print(f"Web worker peak memory goal (< {PEAK_MEMORY_GOAL_MB} MB): {verdict} (worst {worst:.1f} MB)")
    finally:
        if options.keep:
            print(f"Kept {workspace}")
        else:
            shutil.rmtree(workspace, ignore_errors=True)


if __name__ == "__main__":
    main()
