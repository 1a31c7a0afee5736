"""Real worker processes for the tests: ``python -m worker`` started, watched and killed.

Each worker runs in its own process group, so that killing the group takes its pool
processes with it; the ``start_worker`` fixture (conftest) stops every worker it started.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from habitus.jobs import JobRecord, JobStore
from tests.conftest import REPO_ROOT, missing
from tests.fixtures_orthanc import free_port
from tests.service.support import TEST_REDIS_URL, write_ct_series

WorkerFactory = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture(name="start_worker")
def start_worker_fixture(tmp_path: Path) -> Iterator[WorkerFactory]:
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str, **settings: str) -> subprocess.Popen[bytes]:
        """A worker with ``HABITUS_<NAME>`` settings and extra command-line ``args``."""
        env = {
            **os.environ,
            "HABITUS_REDIS_URL": TEST_REDIS_URL,
            "HABITUS_SEGMENTER": "rules",
            "HABITUS_PROGRESS_INTERVAL_S": "0.2",
            "HABITUS_LOG_LEVEL": "INFO",
            **{f"HABITUS_{k.upper()}": v for k, v in settings.items()},
        }
        log = (tmp_path / f"worker-{len(started)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "worker", *args],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: killed with its pool processes
        )
        started.append(process)
        return process

    yield start
    for process in started:
        kill_group(process)


def kill_group(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group may outlive its leader
        os.killpg(process.pid, sig)
    process.wait(timeout=30)


def wait_for_job(
    store: JobStore, job_id: str, done: Callable[[JobRecord], bool], timeout_s: float
) -> JobRecord:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.ConnectionError):  # a test may stop Redis meanwhile
            record = store.get(job_id)
            if done(record):
                return record
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {store.get(job_id).state} after {timeout_s} s")


def finished(record: JobRecord) -> bool:
    return record.state.is_terminal


def new_study(folder: Path) -> Path:
    """A study of its own (new UIDs), so its job is not a new version of another's."""
    write_ct_series(folder / "ct", slices=24, size=128)
    return folder


def pool_processes(worker: subprocess.Popen[bytes]) -> list[int]:
    listed = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(worker.pid)], capture_output=True, text=True
    ).stdout.split()
    return [int(pid) for pid in listed]


class RedisServer:
    """A Redis server of the test's own on a free port, which the test may stop and start.

    Stopping saves the data set (SHUTDOWN SAVE) and starting loads it again, as a Redis
    restart with persistence does; the keys' expiry times run on meanwhile.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=(self.folder / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        """Save the data and stop the server: clients find the port closed."""
        if self.process is None:
            return
        # redis-cli, not redis-py: redis-py would retry the command once the server closed
        subprocess.run(
            ["redis-cli", "-p", str(self.port), "shutdown", "save"], capture_output=True, timeout=30
        )
        self.process.wait(timeout=30)
        self.process = None


@pytest.fixture(name="private_redis")
def private_redis_fixture(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        missing("redis-server is not installed")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    if server.process is not None:
        server.process.kill()
        server.process.wait(timeout=30)
