"""`habitus serve` as a real process: API, DICOM listener and worker up, then Ctrl-C stops all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
import redis
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from tests.conftest import REPO_ROOT
from tests.service.support import API_KEY, AUTH, TEST_REDIS_URL, write_ct_series, zip_files

T = TypeVar("T")

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children_of(pid: int) -> list[int]:
    found = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def wait_for(condition: Callable[[], T], timeout_s: float, what: str) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def test_serve_starts_everything_and_stops_on_ctrl_c(
    tmp_path: Path, redis_client: redis.Redis
) -> None:
    api_port, dicom_port = free_port(), free_port()
    env = {
        **os.environ,
        "HABITUS_REDIS_URL": TEST_REDIS_URL,
        "HABITUS_SPOOL_DIR": str(tmp_path / "spool"),
        "HABITUS_API_KEYS": f'{{"tests": "{API_KEY}"}}',
        "HABITUS_API_PORT": str(api_port),
        "HABITUS_LISTENER_PORT": str(dicom_port),
        "HABITUS_LISTENER_HOST": "127.0.0.1",
        "HABITUS_LISTENER_ALLOWED_AE_TITLES": '["*"]',
        "HABITUS_SEGMENTER": "rules",
    }
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(  # as the `habitus` console script runs it
        [
            sys.executable,
            "-c",
            "import sys; from habitus.cli import main; sys.exit(main(['serve']))",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=log,
    )
    base = f"http://127.0.0.1:{api_port}"
    try:

        def api_up() -> bool:
            try:
                return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(api_up, 60, "the API")
        assert httpx.get(f"{base}/readyz").json()["status"] == "ready"
        assert httpx.get(f"{base}/v1/jobs").status_code == 401
        assert httpx.get(f"{base}/v1/jobs", headers=AUTH).json()["count"] == 0

        ae = AE(ae_title="TESTSCU")
        ae.add_requested_context(Verification)
        assoc = ae.associate("127.0.0.1", dicom_port, ae_title="HABITUS")
        assert assoc.is_established
        assert assoc.send_c_echo().Status == 0x0000
        assoc.release()

        worker = wait_for(lambda: children_of(process.pid), 30, "the worker process")[0]
        files = write_ct_series(tmp_path / "study", slices=24, size=128)
        uploaded = httpx.post(
            f"{base}/v1/studies",
            content=zip_files(files, tmp_path / "study"),
            headers={**AUTH, "Content-Type": "application/zip"},
            params={"segmenter": "rules"},
        )
        assert uploaded.status_code == 202, uploaded.text
        job_url = base + uploaded.headers["location"]

        def job_finished() -> dict[str, object] | None:
            job: dict[str, object] = httpx.get(job_url, headers=AUTH).json()
            return job if job["state"] in ("succeeded", "failed", "cancelled") else None

        job = wait_for(job_finished, 120, "the uploaded study's job")
        assert job is not None
        assert job["state"] == "succeeded", job["error"]
        seg = httpx.get(f"{job_url}/seg", headers=AUTH)
        assert (
            seg.headers["content-type"] == "application/dicom" and seg.content[128:132] == b"DICM"
        )
        assert alive(worker)

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=40) == 0
        assert not alive(worker)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
    output = (tmp_path / "serve.log").read_text()
    # HABITUS_LOG_LEVEL's default (INFO) holds under the CLI: where it listens, what it queued
    for line in ("REST API on http://", "DICOM listener HABITUS on", "queued", "worker stopped"):
        assert line in output, output[-3000:]


def test_serve_without_the_api_extra_says_what_to_install() -> None:
    blocked = "import sys; sys.modules['uvicorn'] = None"  # as if the api extra were missing
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            f"{blocked}; from habitus.cli import main; sys.exit(main(['serve']))",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    output = " ".join((result.stdout + result.stderr).split())  # rich wraps long lines
    assert "habitus serve needs the api extra (uvicorn is not installed)" in output
    assert "Traceback" not in output
