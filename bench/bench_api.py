"""What the REST API costs: upload-to-queued time, job status and metrics latency.

    python bench/bench_api.py [--slices 100] [--size 512] [--requests 200]

Runs the app in-process (FastAPI TestClient) against the local Redis, database 11, which it
empties before and after. No worker runs: the figures are the API's own work (receiving,
unpacking, reading headers, choosing the series, linking files, queueing).
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

import redis
from fastapi.testclient import TestClient
from pydantic import SecretStr

from habitus.config import RedisSettings
from habitus.phantoms.torso import synthetic_torso
from habitus.phantoms.write_dicom import axial_geometry, write_series
from habitus.settings import ApiSettings, Settings
from service.api import create_app

REDIS_URL = "redis://127.0.0.1:6379/11"
KEY = "bench-key"


def study_zip(folder: Path, slices: int, size: int) -> bytes:
    shape, spacing = (slices, size, size), (2.5, 400.0 / size, 400.0 / size)
    hu, _ = synthetic_torso(shape, spacing)
    files = write_series(folder, hu, axial_geometry(shape, spacing))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.name)
    return buffer.getvalue()


def timed_ms(call: object, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()  # type: ignore[operator]
        times.append((time.perf_counter() - start) * 1000)
    return times


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return f"median {statistics.median(ordered):.2f} ms, p95 {p95:.2f} ms (n={len(ordered)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=100)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--uploads", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    client_redis = redis.Redis.from_url(REDIS_URL)
    client_redis.flushdb()
    with tempfile.TemporaryDirectory() as tmp:
        body = study_zip(Path(tmp) / "study", args.slices, args.size)
        settings = Settings(
            redis=RedisSettings(url=REDIS_URL),
            spool_dir=Path(tmp) / "spool",
            api=ApiSettings(api_keys={"bench": SecretStr(KEY)}),
        )
        headers = {"Authorization": f"Bearer {KEY}"}
        with TestClient(create_app(settings)) as client:
            job_ids: list[str] = []

            def upload() -> None:
                response = client.post(
                    "/v1/studies",
                    content=body,
                    headers={**headers, "Content-Type": "application/zip"},
                )
                response.raise_for_status()
                job_ids.extend(response.json()["job_ids"])

            uploads = timed_ms(upload, args.uploads)
            status = timed_ms(
                lambda: client.get(f"/v1/jobs/{job_ids[0]}", headers=headers), args.requests
            )
            listing = timed_ms(lambda: client.get("/v1/jobs", headers=headers), args.requests)
            metrics = timed_ms(lambda: client.get("/metrics"), args.requests)
    client_redis.flushdb()
    print(f"study: {args.slices} slices of {args.size}x{args.size}, zip {len(body) / 1e6:.1f} MB")
    print(f"POST /v1/studies (zip -> job queued): {summary(uploads)}")
    print(f"GET /v1/jobs/{{id}}: {summary(status)}")
    print(f"GET /v1/jobs ({len(job_ids)} jobs): {summary(listing)}")
    print(f"GET /metrics: {summary(metrics)}")


if __name__ == "__main__":
    main()
