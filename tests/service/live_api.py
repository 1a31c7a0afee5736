"""The REST API as a real uvicorn process on a free port, as production runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import REPO_ROOT
from tests.fixtures_orthanc import free_port
from tests.service.support import API_KEY, TEST_REDIS_URL

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class LiveApi:
    process: subprocess.Popen[bytes]
    port: int
    spool: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        """User + system CPU the server process has used so far (/proc/<pid>/stat)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime

    def peak_rss_bytes(self) -> int:
        """The server's peak resident memory (VmHWM)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM in /proc status")

    def leftovers(self) -> list[Path]:
        """Whatever uploads left in the spool's upload folder."""
        uploads = self.spool / "uploads"
        return sorted(uploads.rglob("*")) if uploads.exists() else []


@contextmanager
def live_api(directory: Path, **settings: str) -> Iterator[LiveApi]:
    """uvicorn serving ``service.api:create_app`` with the test Redis and ``settings``
    (HABITUS_ variables) on top."""
    port = free_port()
    spool = directory / "spool"
    env = {
        **os.environ,
        "HABITUS_REDIS_URL": TEST_REDIS_URL,
        "HABITUS_SPOOL_DIR": str(spool),
        "HABITUS_API_KEYS": json.dumps({"tests": API_KEY}),
        **settings,
    }
    log = (directory / "api.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "service.api:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    api = LiveApi(process, port, spool)
    try:
        deadline = time.monotonic() + 60
        while not _up(api.url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"the API did not start: {(directory / 'api.log').read_text()}"
                )
            time.sleep(0.1)
        yield api
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
