"""`habitus serve` as a real process: API, DICOM listener and worker up, then Ctrl-C stops all;
a killed worker is replaced and its job finished; a worker that cannot start ends the command.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import redis
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from service.supervisor import START_RETRIES
from tests.conftest import REPO_ROOT, TEST_REDIS_URL, delete_keys, missing
from tests.polling import wait_for
from tests.service.support import API_KEY, AUTH, redis_available, write_ct_series, zip_files

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


HABITUS_SCRIPT = Path(sys.executable).with_name("habitus")  # the installed console script
SERVE_REDIS_URL = TEST_REDIS_URL  # habitus serve inherits the run's HABITUS_REDIS_PREFIX


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    base: str  # the API's URL
    dicom_port: int
    log: Path

    def output(self) -> str:
        return self.log.read_text()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Starts `habitus serve` as a user does (its console script), on free ports and none of
    the run's Redis keys; kills it, its worker's group included, after the test."""
    if not redis_available(SERVE_REDIS_URL):
        missing(f"Redis is not reachable at {SERVE_REDIS_URL}")
    client = redis.Redis.from_url(SERVE_REDIS_URL)
    delete_keys(client)
    started: list[Served] = []

    def start(cwd: Path = REPO_ROOT, env: dict[str, str] | None = None, **settings: str) -> Served:
        api_port, dicom_port = free_port(), free_port()
        environment = {
            **os.environ,
            **(env or {}),
            "HABITUS_REDIS_URL": SERVE_REDIS_URL,
            "HABITUS_SPOOL_DIR": str(tmp_path / "spool"),
            "HABITUS_API_KEYS": f'{{"tests": "{API_KEY}"}}',
            "HABITUS_API_PORT": str(api_port),
            "HABITUS_LISTENER_PORT": str(dicom_port),
            "HABITUS_LISTENER_HOST": "127.0.0.1",
            "HABITUS_LISTENER_ALLOWED_AE_TITLES": '["*"]',
            "HABITUS_SEGMENTER": "rules",
            **{f"HABITUS_{k.upper()}": v for k, v in settings.items()},
        }
        log = tmp_path / f"serve-{len(started)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(HABITUS_SCRIPT), "serve"], cwd=cwd, env=environment, stdout=out, stderr=out
            )
        started.append(Served(process, f"http://127.0.0.1:{api_port}", dicom_port, log))
        return started[-1]

    yield start
    for served in started:
        workers = children_of(served.process.pid)
        if served.process.poll() is None:
            served.process.kill()
            served.process.wait()
        for pid in workers:  # each worker leads its own process group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    delete_keys(client)


def readiness(base: str) -> dict[str, str]:
    """The checks of /readyz ({} while the API does not answer)."""
    try:
        checks: dict[str, str] = httpx.get(f"{base}/readyz", timeout=2).json()["checks"]
    except httpx.HTTPError:
        return {}
    return checks


def ready(base: str) -> bool:
    checks = readiness(base)
    return bool(checks) and all(v == "ok" for v in checks.values())


def wait_until_ready(served: Served, timeout_s: float) -> None:
    """Until /readyz says ready; fails at once, with the log, if `habitus serve` ended."""

    def ready_or_ended() -> bool:
        return ready(served.base) or served.process.poll() is not None

    wait_for(ready_or_ended, timeout_s, "/readyz to say ready (Redis, spool and a live worker)")
    assert served.process.poll() is None, served.output()[-3000:]


def upload(base: str, study: Path, slices: int, size: int) -> str:
    """A synthetic CT study posted to the API; the URL of its job."""
    files = write_ct_series(study, slices=slices, size=size)
    uploaded = httpx.post(
        f"{base}/v1/studies",
        content=zip_files(files, study),
        headers={**AUTH, "Content-Type": "application/zip"},
        params={"segmenter": "rules"},
    )
    assert uploaded.status_code == 202, uploaded.text
    return base + uploaded.headers["location"]


def job_of(job_url: str) -> dict[str, Any]:
    job: dict[str, Any] = httpx.get(job_url, headers=AUTH).json()
    return job


def finished(job_url: str) -> dict[str, Any] | None:
    job = job_of(job_url)
    return job if job["state"] in ("succeeded", "failed", "cancelled") else None


def test_serve_starts_everything_and_stops_on_ctrl_c(
    tmp_path: Path, serve: Callable[..., Served]
) -> None:
    # started beside a clone, as `cd ~/src && habitus serve` with the clone in ~/src/habitus:
    # that folder must not shadow the installed package in the worker
    beside_clone = tmp_path / "src"
    (beside_clone / "habitus").mkdir(parents=True)
    (beside_clone / "habitus" / "README.md").write_text("a clone, not the package\n")
    served = serve(cwd=beside_clone)
    base = served.base
    wait_until_ready(served, 90)
    assert httpx.get(f"{base}/v1/jobs").status_code == 401
    assert httpx.get(f"{base}/v1/jobs", headers=AUTH).json()["count"] == 0

    ae = AE(ae_title="TESTSCU")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", served.dicom_port, ae_title="HABITUS")
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()

    worker = wait_for(lambda: children_of(served.process.pid), 30, "the worker process")[0]
    job_url = upload(base, tmp_path / "study", slices=24, size=128)
    job = wait_for(lambda: finished(job_url), 120, "the uploaded study's job")
    assert job is not None
    assert job["state"] == "succeeded", job["error"]
    seg = httpx.get(f"{job_url}/seg", headers=AUTH)
    assert seg.headers["content-type"] == "application/dicom" and seg.content[128:132] == b"DICM"
    assert alive(worker)

    served.process.send_signal(signal.SIGINT)
    assert served.process.wait(timeout=40) == 0
    assert not alive(worker)
    output = served.output()
    # HABITUS_LOG_LEVEL's default (INFO) holds under the CLI: where it listens, what it queued
    for line in ("REST API on http://", "DICOM listener HABITUS on", "queued", "worker stopped"):
        assert line in output, output[-3000:]
    assert "ImportError" not in output and "was killed" not in output, output[-3000:]


def test_a_killed_worker_is_replaced_and_its_job_finished(
    tmp_path: Path, serve: Callable[..., Served]
) -> None:
    # a lapsed lease is noticed within seconds (the defaults take a minute or two)
    served = serve(lease_s="3", redelivery_check_s="1", progress_interval_s="0.2")
    base = served.base
    wait_until_ready(served, 90)
    first = wait_for(lambda: children_of(served.process.pid), 30, "the worker process")[0]
    pool = children_of(first)
    job_url = upload(base, tmp_path / "study", slices=40, size=160)  # long enough to be killed
    wait_for(
        lambda: job_of(job_url)["state"] == "running" and job_of(job_url)["percent"] > 0,
        120,
        "the job to run",
    )

    os.kill(first, signal.SIGKILL)  # the worker's main process, as the OOM killer would
    killed_at = time.monotonic()
    assert job_of(job_url)["state"] == "running", "the job finished before the worker was killed"
    wait_for(lambda: readiness(base).get("worker", "ok") != "ok", 10, "/readyz to say not ready")
    assert time.monotonic() - killed_at < 10
    assert readiness(base)["worker"] == "no live worker takes analysis jobs"

    second = wait_for(
        lambda: [p for p in children_of(served.process.pid) if p != first], 30, "a new worker"
    )[0]
    assert time.monotonic() - killed_at < 30
    assert not any(alive(p) for p in pool), "the dead worker's pool processes still run"
    job = wait_for(lambda: finished(job_url), 240, "the interrupted job to finish")
    assert job is not None
    assert job["state"] == "succeeded", job["error"]
    assert job["attempts"] == 2
    wait_for(lambda: ready(base), 30, "/readyz to say ready again")
    assert alive(second)
    assert f"worker (pid {first}) was killed by SIGKILL" in served.output()


def test_a_worker_that_cannot_start_ends_serve_with_the_reason(
    tmp_path: Path, serve: Callable[..., Served]
) -> None:
    broken = tmp_path / "broken"  # a `worker` package that cannot import, first on the path
    (broken / "worker").mkdir(parents=True)
    (broken / "worker" / "__init__.py").write_text(
        "raise ImportError(\"cannot import name 'PIPELINE_VERSION' from 'habitus'\")\n"
    )
    path = os.pathsep.join(p for p in (str(broken), os.environ.get("PYTHONPATH")) if p)
    served = serve(env={"PYTHONPATH": path})
    assert served.process.wait(timeout=120) == 2
    output = served.output()
    assert f"the worker cannot start: it stopped {START_RETRIES} times in a row" in output
    assert "exited with status 1" in output
    assert "cannot import name 'PIPELINE_VERSION'" in output  # the worker's own traceback


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
