"""Sizes of the images and start-up times of their containers, with podman.

    python bench/bench_images.py [--runs 3]

Needs the images (docker/build.sh api worker-cpu redis). Runs on the host network (ports
picked free), with the compose file's hardening (user 10001, read-only root, /tmp tmpfs, no
capabilities), against a Redis container of its own. Per run, from ``podman run`` to:

- API: its /healthz answering 200;
- listener: its DICOM port accepting connections;
- worker: its heartbeat in Redis (it consumes its queues: what the API's /readyz counts).

Containers are removed after each run; the first run may include the page cache warming.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import socket
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import redis

from habitus.jobs import ANALYZE_QUEUE
from habitus.liveness import live_workers

REPO_ROOT = Path(__file__).resolve().parents[1]

ENV = {**os.environ, "CONTAINERS_CONF": str(REPO_ROOT / "docker" / "containers.conf")}
IMAGES = ("api", "worker-cpu", "worker-gpu", "redis", "orthanc")
SPOOL, SPOOL_DIR = f"bench-images-{os.getpid()}-spool", "/var/lib/habitus/spool"
HARDENING = [
    "--network", "host", "--user", "10001:10001", "--read-only", "--tmpfs", "/tmp",
    "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--no-healthcheck",
]  # fmt: skip


def podman(*args: str) -> str:
    result = subprocess.run(["podman", *args], env=ENV, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip()


def image_sizes() -> dict[str, int]:
    sizes = {}
    for image in IMAGES:
        with contextlib.suppress(RuntimeError):  # not built
            inspected = json.loads(podman("image", "inspect", f"habitus-{image}"))
            sizes[image] = int(inspected[0]["Size"])
    return sizes


def until(condition: Callable[[], bool], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not answers(condition):
        if time.monotonic() > deadline:
            raise TimeoutError("not up in time")
        time.sleep(0.05)


def answers(condition: Callable[[], bool]) -> bool:
    try:
        return condition()
    except (redis.RedisError, OSError):  # not listening yet
        return False


def timed_start(name: str, image: str, env: dict[str, str], ready: Callable[[], bool],
                *command: str) -> float:  # fmt: skip
    flags = [f"--env={k}={v}" for k, v in env.items()]
    start = time.monotonic()
    podman("run", "-d", "--name", name, *HARDENING, *flags, "--volume", f"{SPOOL}:{SPOOL_DIR}",
           f"habitus-{image}", *command)  # fmt: skip
    try:
        until(ready)
    except TimeoutError:
        log = subprocess.run(["podman", "logs", "--tail", "20", name], env=ENV, capture_output=True)
        raise TimeoutError(f"{name} not up:\n{log.stdout.decode()}{log.stderr.decode()}") from None
    return time.monotonic() - start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def one_run(
    names: list[str], common: dict[str, str], key: str, client: redis.Redis
) -> dict[str, float]:
    """Start the API, the listener and a worker, one after another; then remove them."""
    api_port, dicom_port = free_port(), free_port()
    api = timed_start(
        names[0], "api", {**common, "HABITUS_API_KEYS": json.dumps({"bench": key})},
        lambda: http_ok(f"http://127.0.0.1:{api_port}/healthz"),
        "python", "-m", "uvicorn", "service.api:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(api_port),
    )  # fmt: skip
    listener = timed_start(
        names[1], "api", {**common, "HABITUS_LISTENER_PORT": str(dicom_port)},
        lambda: port_open(dicom_port), "python", "-m", "service.listener",
    )  # fmt: skip
    worker = timed_start(
        names[2], "worker-cpu", {**common, "HABITUS_SEGMENTER": "auto"},
        lambda: live_workers(client, ANALYZE_QUEUE) > 0,
    )  # fmt: skip
    podman("rm", "-f", "-v", "-t", "2", *names)
    until(lambda: live_workers(client, ANALYZE_QUEUE) == 0, 30)
    return {"API /healthz": api, "listener port": listener, "worker": worker}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    for image, size in image_sizes().items():
        print(f"habitus-{image}: {size / 1e6:.0f} MB")

    tag = f"bench-images-{os.getpid()}"
    password, redis_port = secrets.token_hex(16), free_port()
    redis_url = f"redis://:{password}@127.0.0.1:{redis_port}/0"
    names = [f"{tag}-{part}" for part in ("redis", "api", "listener", "worker")]
    podman("volume", "create", SPOOL)
    try:
        podman("run", "-d", "--name", names[0], "--network", "host", "habitus-redis",
               "redis-server", "--port", str(redis_port), "--requirepass", password,
               "--save", "", "--appendonly", "no")  # fmt: skip
        client = redis.Redis.from_url(redis_url)
        until(lambda: bool(client.ping()))
        common = {"HABITUS_REDIS_URL": redis_url, "HABITUS_SPOOL_DIR": SPOOL_DIR}
        times: dict[str, list[float]] = {"API /healthz": [], "listener port": [], "worker": []}
        for _ in range(args.runs):
            for what, took in one_run(names[1:], common, password, client).items():
                times[what].append(took)
        for what, seconds in times.items():
            print(f"{what}: median {statistics.median(seconds):.1f} s "
                  f"({', '.join(f'{s:.1f}' for s in seconds)})")  # fmt: skip
    finally:
        for command in (["rm", "-f", "-i", "-v", "-t", "0", *names], ["volume", "rm", "-f", SPOOL]):
            subprocess.run(["podman", *command], env=ENV, capture_output=True)


if __name__ == "__main__":
    main()
