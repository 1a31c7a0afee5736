"""CPU time of the container health check, ``python -m service.healthcheck``.

The images run it every 30 s (docker/Dockerfile.api, docker/docker-compose.yml, the Helm
chart), so its start-up cost is paid all day. Each run is a fresh process probing a stand-in
API that answers ``/healthz`` with 200 (the healthy path of a running container); the table
gives the median and spread of the probe's CPU time (user + system, from the children's
rusage) beside a bare ``python -c pass``, the interpreter's own floor, and the load.

    python bench/bench_healthcheck.py [--runs 20] [--baseline DIR]

``--baseline DIR`` runs the probe of another source tree as well, in turn with this one's
under the same load (e.g. ``git archive REV habitus service | tar -x -C DIR``).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


class _Healthy(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def stand_in_api() -> Iterator[int]:
    """A local HTTP server answering ``/healthz``; yields its port."""
    server = HTTPServer(("127.0.0.1", 0), _Healthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def cpu_seconds(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    """User + system CPU seconds of one run of ``command`` in ``cwd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, timeout=60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{command} in {cwd} failed: {done.stderr.decode()[-500:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def row(label: str, times: list[float]) -> str:
    p90 = statistics.quantiles(times, n=10)[-1]
    return f"| {label} | {statistics.median(times):.3f} | {min(times):.3f} | {p90:.3f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="at least 2")
    parser.add_argument("--baseline", type=Path, help="another tree's habitus/ and service/")
    args = parser.parse_args()

    # -m puts the working folder first on sys.path: each tree's probe imports its own code
    commands = {"python -c pass": ([sys.executable, "-c", "pass"], REPO_ROOT)}
    probe = [sys.executable, "-m", "service.healthcheck"]
    if args.baseline:
        commands[f"healthcheck of {args.baseline}"] = (probe, args.baseline.resolve())
    commands["healthcheck of this tree"] = (probe, REPO_ROOT)
    times: dict[str, list[float]] = {label: [] for label in commands}
    with stand_in_api() as port:
        env = {**os.environ, "HABITUS_API_PORT": str(port)}
        for _ in range(args.runs):  # in turn, so that a change of load falls on all alike
            for label, (command, cwd) in commands.items():
                times[label].append(cpu_seconds(command, cwd, env))
    print(f"load average (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{args.runs} runs each; CPU seconds per run (user + system)")
    print("| command | median | min | p90 |")
    print("| --- | --- | --- | --- |")
    for label, values in times.items():
        print(row(label, values))


if __name__ == "__main__":
    main()
