"""The whole product as processes: Orthanc (the PACS, auto-routing CT to Habitus), the REST
API, the DICOM listener and a Celery worker with the rule-based segmenter, all on Redis."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import redis

from tests.conftest import REPO_ROOT, TEST_REDIS_URL, delete_keys, missing
from tests.fixtures_orthanc import ORTHANC, ROUTE_CT_LUA, Orthanc, free_port
from tests.polling import wait_for

T = TypeVar("T")

API_KEY = "e2e-key-0123456789abcdef"
STORESCU = Path("/usr/bin/storescu")
ECHOSCU = Path("/usr/bin/echoscu")


@dataclass
class HabitusStack:
    directory: Path
    orthanc: Orthanc
    api_port: int = field(default_factory=free_port)
    listener_port: int = field(default_factory=free_port)
    redis_url: str = TEST_REDIS_URL  # the processes inherit the run's HABITUS_REDIS_PREFIX
    overrides: dict[str, str] = field(default_factory=dict)  # more HABITUS_ settings
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        node = {"name": "orthanc", "ae_title": self.orthanc.aet, "host": "127.0.0.1"}
        return {
            **os.environ,
            "HABITUS_REDIS_URL": self.redis_url,
            "HABITUS_SPOOL_DIR": str(self.directory / "spool"),
            "HABITUS_API_KEYS": json.dumps({"e2e": API_KEY}),
            "HABITUS_API_HOST": "127.0.0.1",
            "HABITUS_API_PORT": str(self.api_port),
            "HABITUS_LISTENER_HOST": "127.0.0.1",
            "HABITUS_LISTENER_PORT": str(self.listener_port),
            "HABITUS_LISTENER_AE_TITLE": "HABITUS",
            "HABITUS_LISTENER_ALLOWED_AE_TITLES": json.dumps(["STORESCU"]),
            "HABITUS_LISTENER_QUIET_PERIOD_S": "3",
            "HABITUS_DICOM_NODES": json.dumps([{**node, "port": self.orthanc.dicom_port}]),
            "HABITUS_SEGMENTER": "rules",
            "HABITUS_DEVICE": "cpu",
            "HABITUS_DELIVERY_FIRST_RETRY_S": "1",
            "HABITUS_DELIVERY_MAX_RETRY_S": "4",
            "HABITUS_DELIVERY_TIMEOUT_S": "10",
            "HABITUS_LEASE_S": "5",
            # a killed worker's task comes back after this long (hours in production)
            "HABITUS_VISIBILITY_TIMEOUT_S": "20",
            "HABITUS_LOG_LEVEL": "INFO",
            **self.overrides,
        }

    def _spawn(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        log = (self.directory / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            [sys.executable, *args],
            cwd=REPO_ROOT,
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=log,
        )

    def start(self) -> HabitusStack:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._spawn(
            "api", "-m", "uvicorn", "service.api:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(self.api_port),
        )  # fmt: skip
        self._spawn("listener", "-m", "service.listener")
        self.start_worker()
        wait_for(self.api_up, 60, "the REST API")
        wait_for(self.listener_up, 60, "the DICOM listener")
        return self

    def start_worker(self, **settings: str) -> None:
        """Start a worker; ``settings`` (HABITUS_ variables) override the stack's."""
        self._spawn("worker", "-m", "worker", env=settings)

    def kill_worker(self) -> None:
        """SIGKILL the worker and its pool processes, as a crash or an OOM kill would."""
        worker = self.processes.pop("worker")
        children = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(worker.pid)], capture_output=True, text=True
        ).stdout.split()
        for pid in [worker.pid, *map(int, children)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        worker.wait()

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

    # probes
    def api_up(self) -> bool:
        try:
            return httpx.get(f"{self.api_url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def listener_up(self) -> bool:
        result = subprocess.run(
            [str(ECHOSCU), "-aet", "STORESCU", "-aec", "HABITUS", "127.0.0.1",
             str(self.listener_port)],
            capture_output=True, timeout=30,
        )  # fmt: skip
        return result.returncode == 0

    # REST
    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def api(self, path: str) -> httpx.Response:
        return httpx.get(
            f"{self.api_url}{path}", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30
        )

    def jobs(self) -> list[dict[str, Any]]:
        response = self.api("/v1/jobs?limit=100")
        response.raise_for_status()
        return list(response.json()["jobs"])

    def job_of_series(self, series_uid: str) -> dict[str, Any] | None:
        found = [j for j in self.jobs() if j.get("series_instance_uid") == series_uid]
        return max(found, key=lambda j: j["version"]) if found else None


def storescu(port: int, files: list[Path], called: str, calling: str = "STORESCU") -> None:
    """Send files with dcmtk's storescu, proposing JPEG 2000 as well (``-xv``)."""
    result = subprocess.run(
        [str(STORESCU), "-xv", "-aet", calling, "-aec", called, "127.0.0.1", str(port),
         *map(str, files)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "TCP_NODELAY": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HabitusStack]:
    for tool in (ORTHANC, STORESCU, ECHOSCU):
        if not tool.exists():
            missing(f"{tool} is not installed")
    client = redis.Redis.from_url(TEST_REDIS_URL)
    try:
        client.ping()
    except redis.RedisError:
        missing(f"Redis is not reachable at {TEST_REDIS_URL}")
    delete_keys(client)
    root = tmp_path_factory.mktemp("e2e")
    listener_port = free_port()
    orthanc = Orthanc(
        root / "orthanc",
        modalities={"habitus": ["HABITUS", "127.0.0.1", listener_port]},
        lua=ROUTE_CT_LUA.format(modality="habitus"),
    ).start()
    habitus = HabitusStack(root / "habitus", orthanc, listener_port=listener_port)
    try:
        yield habitus.start()
    finally:
        habitus.stop()
        orthanc.stop()
        delete_keys(client)
