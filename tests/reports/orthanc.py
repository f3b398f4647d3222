"""A real Orthanc (Debian's orthanc + orthanc-dicomweb) on free ports with its own storage folder, for tests."""

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

ORTHANC_BINARY = "/usr/sbin/Orthanc"
ORTHANC_DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
ORTHANC_AE_TITLE = "ORTHANC"


def orthanc_missing():
    """Why Orthanc cannot run here, or "" when it can."""
    if shutil.which(ORTHANC_BINARY) is None or not Path(ORTHANC_DICOMWEB_PLUGIN).exists():
        return "Orthanc with its DICOMweb plugin is not installed (apt-get install orthanc orthanc-dicomweb)"
    return ""


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Orthanc:
    """``start()`` and ``stop()`` may be called more than once: the ports and the storage stay the same."""

    def __init__(self, folder, **configuration):
        self.folder = Path(folder)
        self.http_port, self.dicom_port = free_port(), free_port()
        self.process = None
        self.folder.mkdir(parents=True, exist_ok=True)
        self.configuration = self.folder / "orthanc.json"
        self.configuration.write_text(json.dumps({
            "Name": "radassist-test-pacs",
            "StorageDirectory": str(self.folder / "storage"),
            "IndexDirectory": str(self.folder / "storage"),
            "HttpPort": self.http_port,
            "DicomServerEnabled": True,
            "DicomPort": self.dicom_port,
            "DicomAet": ORTHANC_AE_TITLE,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "Plugins": [ORTHANC_DICOMWEB_PLUGIN],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
            **configuration,
        }))

    @property
    def url(self):
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self):
        return f"{self.url}/dicom-web"

    def start(self, timeout=60):
        log = open(self.folder / "orthanc.log", "a")
        self.process = subprocess.Popen([ORTHANC_BINARY, str(self.configuration)], stdout=log,
                                        stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited with {self.process.returncode}; see {self.folder / 'orthanc.log'}")
            try:
                self.get("/system")
                return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("Orthanc did not answer in time")

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.loads(response.read())

    def sop_instance_uids(self, study_instance_uid):
        """The SOP Instance UIDs Orthanc holds for a study, read back through its own QIDO-RS."""
        try:
            found = self.get(f"/dicom-web/studies/{study_instance_uid}/instances")
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return set()
            raise
        return {entry["00080018"]["Value"][0] for entry in found}

    def stored_bytes(self, sop_instance_uid):
        (orthanc_id,) = [entry["ID"] for entry in self._post_find(sop_instance_uid)]
        with urllib.request.urlopen(f"{self.url}/instances/{orthanc_id}/file", timeout=10) as response:
            return response.read()

    def _post_find(self, sop_instance_uid):
        request = urllib.request.Request(
            self.url + "/tools/find", method="POST",
            data=json.dumps({"Level": "Instance", "Query": {"SOPInstanceUID": sop_instance_uid},
                             "Expand": True}).encode(),
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
