"""A real Orthanc (Debian package) as the PACS in integration tests.

Each server gets its own ports, storage and configuration in a temporary folder; it can be
stopped and started again on the same ports and storage (a PACS that goes down and comes
back). Import ``orthanc_fixture`` into a test module to get the ``orthanc`` fixture.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import missing

ORTHANC = Path("/usr/sbin/Orthanc")

ROUTE_CT_LUA = """
-- Send every stable CT series to Habitus; results (SEG, SR) come back as other modalities.
-- Lua's SendToModality() takes one instance in Orthanc 1.10, so a whole series goes through
-- the REST call, as an asynchronous job that does not hold the Lua engine meanwhile.
function OnStableSeries(seriesId, tags, metadata)
  if tags['Modality'] == 'CT' then
    RestApiPost('/modalities/{modality}/store',
                DumpJson({{Resources = {{seriesId}}, Asynchronous = true}}, true))
  end
end
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Orthanc:
    directory: Path
    aet: str = "ORTHANC"
    http_port: int = field(default_factory=free_port)
    dicom_port: int = field(default_factory=free_port)
    modalities: dict[str, list[Any]] = field(default_factory=dict)  # name -> [aet, host, port]
    lua: str | None = None
    stable_age_s: int = 2
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "Name": "habitus-test-pacs",
            "StorageDirectory": str(self.directory / "storage"),
            "IndexDirectory": str(self.directory / "storage"),
            "Plugins": [],
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomServerEnabled": True,
            "DicomAet": self.aet,
            "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": False,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowEcho": True,
            "DicomModalities": self.modalities,
            "StableAge": self.stable_age_s,
            "DicomAssociationCloseDelay": 0,
            "DicomScuTimeout": 30,
            "LuaScripts": [],
            "UnknownSopClassAccepted": True,
            "HttpCompressionEnabled": False,
        }
        if self.lua is not None:
            script = self.directory / "route.lua"
            script.write_text(self.lua)
            config["LuaScripts"] = [str(script)]
        return config

    def start(self, timeout: float = 30.0) -> Orthanc:
        self.directory.mkdir(parents=True, exist_ok=True)
        config_path = self.directory / "orthanc.json"
        config_path.write_text(json.dumps(self.config(), indent=2))
        log = (self.directory / "orthanc.log").open("ab")
        self.process = subprocess.Popen(
            [str(ORTHANC), "--no-jobs", str(config_path)], stdout=log, stderr=log
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited at start; see {self.directory}/orthanc.log")
            try:
                if httpx.get(f"{self.url}/system", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"Orthanc did not answer within {timeout} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    # REST helpers
    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.url}{path}", timeout=30)
        response.raise_for_status()
        return response.json()

    def series(self) -> list[dict[str, Any]]:
        """Every series Orthanc holds, with its main tags and instance ids."""
        return [self.get(f"/series/{sid}") for sid in self.get("/series")]

    def series_of_modality(self, modality: str) -> list[dict[str, Any]]:
        return [s for s in self.series() if s["MainDicomTags"].get("Modality") == modality]

    def instance_tags(self, instance_id: str) -> dict[str, Any]:
        return dict(self.get(f"/instances/{instance_id}/simplified-tags"))

    def sop_instance_uids(self) -> set[str]:
        return {
            self.get(f"/instances/{i}")["MainDicomTags"]["SOPInstanceUID"]
            for i in self.get("/instances")
        }


@pytest.fixture(name="orthanc")
def orthanc_fixture(tmp_path: Path) -> Iterator[Orthanc]:
    """An empty Orthanc; tests may set ``modalities`` and ``lua`` and call ``start`` again."""
    if not ORTHANC.exists() or shutil.which(str(ORTHANC)) is None:
        missing("Orthanc is not installed (Debian package orthanc)")
    server = Orthanc(tmp_path / "orthanc").start()
    yield server
    server.stop()
