"""Progress writes are throttled and notice cancellation; a job lease lapses after a crash."""

from __future__ import annotations

import time
from functools import partial

import pytest

from habitus.jobs import JobRecord, JobStore, Origin, OriginKind
from habitus.progress import Stage
from worker.job_progress import JobCancelledError, JobProgress
from worker.lease import job_lease


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


JOB = "0" * 32


def new_job(store: JobStore) -> JobRecord:
    return store.create(
        JobRecord(input_dir="/in", output_dir="/out", origin=Origin(kind=OriginKind.REST))
    )


def test_progress_is_throttled_within_a_stage(store: JobStore) -> None:
    job = new_job(store)
    clock = FakeClock()
    progress = JobProgress(partial(store.update, job.id), job.id, interval_s=1.0, clock=clock)
    progress(Stage.SEGMENT, 0.1)
    clock.now = 0.5
    progress(Stage.SEGMENT, 0.2)  # too soon: not written
    assert progress.writes == 1
    clock.now = 0.6
    progress(Stage.METRICS, 0.0)  # a new stage is always written
    clock.now = 1.7
    progress(Stage.METRICS, 0.5)
    assert progress.writes == 3
    record = store.get(job.id)
    assert record.stage == "metrics" and 75.0 < record.percent < 100.0


def test_progress_never_goes_backwards(store: JobStore) -> None:
    job = new_job(store)
    progress = JobProgress(partial(store.update, job.id), job.id, interval_s=0.0)
    progress(Stage.SEGMENT, 0.8)
    progress(Stage.SEGMENT, 0.3)
    assert store.get(job.id).percent == pytest.approx(20.0 + 0.8 * 65.0)


def test_progress_stops_a_cancelled_job(store: JobStore) -> None:
    job = new_job(store)
    progress = JobProgress(partial(store.update, job.id), job.id, interval_s=0.0)
    progress(Stage.READ, 0.5)
    store.update(job.id, lambda r: r.model_copy(update={"cancel_requested": True}))
    with pytest.raises(JobCancelledError, match="cancelled during segment"):
        progress(Stage.SEGMENT, 0.1)


def test_a_lease_is_exclusive_renewed_and_released(store: JobStore) -> None:
    first = job_lease(store.redis, JOB, ttl_s=0.6)
    assert first.acquire()
    try:
        time.sleep(1.0)  # longer than the TTL: renewals keep it
        assert not job_lease(store.redis, JOB, ttl_s=0.6).acquire()
    finally:
        first.release()
    second = job_lease(store.redis, JOB, ttl_s=0.6)
    assert second.acquire()
    second.release()


def test_a_crashed_holders_lease_lapses(store: JobStore) -> None:
    crashed = job_lease(store.redis, JOB, ttl_s=0.4)
    assert crashed.acquire()
    crashed._stop.set()  # the holder dies: no more renewals, no release
    assert not job_lease(store.redis, JOB, ttl_s=0.4).acquire()
    time.sleep(0.6)
    successor = job_lease(store.redis, JOB, ttl_s=0.4)
    assert successor.acquire()
    crashed.release()  # a late release by the dead holder must not free the new lease
    assert not job_lease(store.redis, JOB, ttl_s=0.4).acquire()
    successor.release()
