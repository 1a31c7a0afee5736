"""The image's health check: healthy with the API or with the listener, unhealthy with neither;
ready only while a worker is alive as well.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import redis
import uvicorn

from habitus.jobs import ANALYZE_QUEUE
from habitus.liveness import beat
from habitus.settings import Settings
from service.api import create_app
from tests.conftest import REDIS_PREFIX, REPO_ROOT
from tests.service.support import TEST_REDIS_URL


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_check(
    api_port: int, listener_port: int, *args: str, redis_url: str = TEST_REDIS_URL
) -> subprocess.CompletedProcess[str]:
    env = {
        "HABITUS_API_PORT": str(api_port),
        "HABITUS_LISTENER_PORT": str(listener_port),
        "HABITUS_REDIS_URL": redis_url,
        "HABITUS_REDIS_PREFIX": REDIS_PREFIX,
    }
    return subprocess.run(
        [sys.executable, "-m", "service.healthcheck", *args],
        cwd=REPO_ROOT,
        env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api_server() -> Iterator[HTTPServer]:
    server = HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_healthy_when_the_api_answers(api_server: HTTPServer) -> None:
    result = run_check(api_server.server_address[1], free_port())
    assert result.returncode == 0, result.stderr


def test_healthy_when_only_the_listener_port_is_open() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        result = run_check(free_port(), listener.getsockname()[1])
    assert result.returncode == 0, result.stderr


def test_unhealthy_with_neither_says_why() -> None:
    api_port, listener_port = free_port(), free_port()
    result = run_check(api_port, listener_port)
    assert result.returncode == 1
    assert f"REST API on port {api_port} does not answer" in result.stderr
    assert f"DICOM listener on port {listener_port} does not accept connections" in result.stderr


def test_unhealthy_when_the_api_reports_a_fault(api_server: HTTPServer) -> None:
    _Health.status = 503
    try:
        result = run_check(api_server.server_address[1], free_port())
    finally:
        _Health.status = 200
    assert result.returncode == 1
    assert "REST API /healthz answered 503" in result.stderr


# The product's libraries besides the settings model's own (pydantic, pydantic-settings).
HEAVY = ("redis", "celery", "pynetdicom", "pydicom", "highdicom", "numpy", "scipy", "fastapi")


def test_the_plain_check_reads_the_settings_without_the_heavy_libraries() -> None:
    """The images run it every 30 s: with the job store's redis (the DICOM node model was
    read from there) it cost 0.38 s of CPU a run, without it 0.27 s, of which pydantic and
    pydantic-settings take about 0.14 s (bench/bench_healthcheck.py)."""
    code = (
        "import sys; from service.healthcheck import main; main([]); "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    )
    env = {"HABITUS_API_PORT": str(free_port()), "HABITUS_LISTENER_PORT": str(free_port())}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "unhealthy" in done.stderr  # the check ran to its end
    assert done.stdout.strip() == "[]"


@pytest.fixture
def real_api(settings: Settings) -> Iterator[int]:
    """The REST API itself (uvicorn in a thread) on the test Redis; yields its port."""
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(timeout=10)


def test_the_api_is_alive_but_not_ready_without_a_worker(real_api: int) -> None:
    assert run_check(real_api, free_port()).returncode == 0  # alive: no restart for this
    result = run_check(real_api, free_port(), "--ready")
    assert result.returncode == 1
    assert "REST API /readyz: not ready: worker: no live worker takes analysis jobs" in (
        result.stderr
    )


def test_the_api_is_ready_while_a_worker_beats(real_api: int, redis_client: redis.Redis) -> None:
    beat(redis_client, [ANALYZE_QUEUE], "celery@test:1", ttl_s=30)
    result = run_check(real_api, free_port(), "--ready")
    assert result.returncode == 0, result.stderr


def test_the_listener_is_ready_only_while_a_worker_beats(redis_client: redis.Redis) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        idle = run_check(free_port(), port, "--ready")
        beat(redis_client, [ANALYZE_QUEUE], "celery@test:1", ttl_s=30)
        working = run_check(free_port(), port, "--ready")
    assert idle.returncode == 1
    assert "not ready:" in idle.stderr and "no live worker takes analysis jobs" in idle.stderr
    assert working.returncode == 0, working.stderr


def test_the_listener_is_not_ready_without_redis_and_names_no_url() -> None:
    away = f"redis://:secret-password@127.0.0.1:{free_port()}/0"
    with socket.create_server(("127.0.0.1", 0)) as listener:
        result = run_check(free_port(), listener.getsockname()[1], "--ready", redis_url=away)
    assert result.returncode == 1
    assert "Redis does not answer (ConnectionError)" in result.stderr
    assert "secret-password" not in result.stderr
