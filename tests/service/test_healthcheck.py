"""The image's health check: healthy with the API or with the listener, unhealthy with neither."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tests.conftest import REPO_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_check(api_port: int, listener_port: int) -> subprocess.CompletedProcess[str]:
    env = {"HABITUS_API_PORT": str(api_port), "HABITUS_LISTENER_PORT": str(listener_port)}
    return subprocess.run(
        [sys.executable, "-m", "service.healthcheck"],
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
