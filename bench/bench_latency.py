"""Latency of the service: last instance received -> SEG stored in the PACS, and its parts.

    python bench/bench_latency.py [--slices 200] [--size 256] [--runs 2]
                                  [--quiet-period 10] [--quiet-after-release 2]

Starts Orthanc (the PACS), the REST API, the DICOM listener and one Celery worker with the
rule-based segmenter as separate processes on Redis database 10 (emptied before and after),
then, per run, sends a new synthetic CT series of ``--slices`` slices straight to the
listener as if from Orthanc (calling AE ORTHANC, so results go back there) and times:

- quiet period + submission: storescu done (the last instance acknowledged) -> job created;
- queue: job created -> a worker starts it;
- analysis: the pipeline's own stages (read ... outputs, from the job's timings);
- worker overhead: the rest of the worker's run (claiming, progress writes, completion);
- delivery: job finished -> the SEG (and SR) stored in Orthanc, seen through its REST API.

"Service overhead" is everything but the analysis. storescu releases its association after
the last instance, so the listener waits HABITUS_LISTENER_QUIET_AFTER_RELEASE_S (2 s by
default), not the full quiet period, before it submits the study. Run 1 is cold (the first
job of freshly started processes), later runs warm. The load average is printed beside the
runs: on a shared machine it moves these figures by a second or more.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pydicom
import redis

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the test helpers that start Orthanc and Habitus

from habitus.phantoms.torso import synthetic_torso  # noqa: E402
from habitus.phantoms.write_dicom import axial_geometry, write_series  # noqa: E402
from tests.e2e.conftest import HabitusStack, storescu  # noqa: E402
from tests.fixtures_orthanc import Orthanc  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/10"
STAGES = ("read", "choose", "volume", "segment", "metrics", "outputs")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def seg_series_in_orthanc(orthanc: Orthanc, study_uid: str) -> bool:
    found = httpx.post(
        f"{orthanc.url}/tools/find",
        json={"Level": "Series", "Query": {"StudyInstanceUID": study_uid, "Modality": "SEG"}},
        timeout=10,
    ).json()
    return bool(found)


def one_run(
    stack: HabitusStack, folder: Path, slices: int, size: int, seed: int
) -> dict[str, float]:
    shape, spacing = (slices, size, size), (2.0, 400.0 / size, 400.0 / size)
    hu, _ = synthetic_torso(shape, spacing, seed=seed)
    files = write_series(folder, hu, axial_geometry(shape, spacing))
    header = pydicom.dcmread(files[0], stop_before_pixels=True)
    study_uid, series_uid = str(header.StudyInstanceUID), str(header.SeriesInstanceUID)

    storescu(stack.listener_port, files, called="HABITUS", calling=stack.orthanc.aet)
    sent = datetime.now(UTC)
    deadline = time.monotonic() + 1800
    stored: datetime | None = None
    job: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        if stored is None and seg_series_in_orthanc(stack.orthanc, study_uid):
            stored = datetime.now(UTC)
        job = stack.job_of_series(series_uid)
        if job and job["state"] == "failed":
            raise RuntimeError(f"job failed: {job['error']}")
        if stored is not None and job and job["deliveries"]["orthanc"]["state"] == "done":
            break
        time.sleep(0.1)
    if stored is None or job is None:
        raise RuntimeError("no SEG reached Orthanc in time")
    created, started = parse_time(job["created_at"]), parse_time(job["started_at"])
    finished = parse_time(job["finished_at"])
    analysis = sum(float(job["timings_s"].get(s, 0.0)) for s in STAGES)
    total = (stored - sent).total_seconds()
    return {
        "quiet period + submission": (created - sent).total_seconds(),
        "queue": (started - created).total_seconds(),
        "analysis": analysis,
        "worker overhead": (finished - started).total_seconds() - analysis,
        "delivery": (stored - finished).total_seconds(),
        "total": total,
        "service overhead": total - analysis,
        "load": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--quiet-period", type=float, default=10.0)
    parser.add_argument("--quiet-after-release", type=float, default=2.0)
    args = parser.parse_args()

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    with tempfile.TemporaryDirectory(prefix="habitus-bench-latency-") as tmp:
        root = Path(tmp)
        orthanc = Orthanc(root / "orthanc").start()
        stack = HabitusStack(
            root / "habitus",
            orthanc,
            redis_url=REDIS_URL,
            overrides={
                "HABITUS_LISTENER_QUIET_PERIOD_S": str(args.quiet_period),
                "HABITUS_LISTENER_QUIET_AFTER_RELEASE_S": str(args.quiet_after_release),
            },
        )
        try:
            stack.start()
            print(
                f"{args.runs} runs of a {args.slices}-slice {args.size}x{args.size} CT series, "
                f"rule-based segmenter, quiet period {args.quiet_period:g} s "
                f"({args.quiet_after_release:g} s after release)"
            )
            results = [
                one_run(stack, root / f"series{run}", args.slices, args.size, seed=run)
                for run in range(args.runs)
            ]
        finally:
            stack.stop()
            orthanc.stop()
            client.flushdb()
    print(f"{'seconds':<28}" + "".join(f"{'run ' + str(i + 1):>10}" for i in range(len(results))))
    for key in [k for k in results[0] if k != "load"]:
        print(f"{key:<28}" + "".join(f"{r[key]:>10.2f}" for r in results))
    print(f"{'load average (1 min)':<28}" + "".join(f"{r['load']:>10.1f}" for r in results))


if __name__ == "__main__":
    main()
