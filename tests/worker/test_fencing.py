"""Fencing tokens on real Redis: a worker whose job lease was taken over writes nothing.

Worker A takes a lease, stalls past its lapse; worker B takes it over with a higher token.
A's record writes are then refused, with a log line, and B's go through (deliveries:
test_delivery.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from redis.exceptions import LockNotOwnedError
from redis.lock import Lock

from habitus.jobs import JobRecord, JobState, JobStore
from habitus.progress import StepCallback
from habitus.segment.base import ModelInfo
from habitus.segment.loader import load_segmenter
from habitus.volume import CTVolume
from tests.worker.support import queue_job
from tests.worker.test_runner import Runner
from worker.fenced import update_if_current
from worker.lease import Lease, LeaseLostError, job_lease


def note(text: str) -> Callable[[JobRecord], JobRecord]:
    return lambda r: r.model_copy(update={"warnings": [*r.warnings, text]})


def stalled_then_taken_over(store: JobStore, job_id: str) -> tuple[Lease, Lease]:
    """A's lease, stalled (no renewal) until it lapsed, and B's, taken after it."""
    a = job_lease(store.redis, job_id, ttl_s=0.3)
    assert a.acquire()
    a._stop.set()  # A stalls: a long pause, no renewals
    time.sleep(0.5)
    b = job_lease(store.redis, job_id, ttl_s=30)
    assert b.acquire()
    assert b.fence_token > a.fence_token
    return a, b


def test_a_superseded_holder_cannot_write_the_job(
    small_ct: Path, tmp_path: Path, store: JobStore, caplog: pytest.LogCaptureFixture
) -> None:
    job = queue_job(small_ct, tmp_path, store)
    a, b = stalled_then_taken_over(store, job.id)
    try:
        with (
            caplog.at_level(logging.WARNING, logger="worker.fenced"),
            pytest.raises(LeaseLostError),
        ):
            update_if_current(store, job.id, a, note("from A"))
        assert any("write refused, the lease was taken over" in r.message for r in caplog.records)
        update_if_current(store, job.id, b, note("from B"))
        assert store.get(job.id).warnings == ["from B"]
        assert not a.is_current() and b.is_current()
    finally:
        b.release()


def test_a_lapsed_lease_nobody_took_is_taken_back(store: JobStore) -> None:
    lease = job_lease(store.redis, "0" * 32, ttl_s=0.6)
    assert lease.acquire()
    try:
        store.redis.delete(lease.name)  # lapsed while Redis was away, say
        time.sleep(0.5)  # a renewal
        assert lease.owned()
        assert lease.is_current()
        lease.raise_if_lost()
    finally:
        lease.release()


def test_a_holder_back_after_another_came_and_went_knows_it_lost_the_lease(
    store: JobStore,
) -> None:
    """Why the lease keeps a fencing counter beside redis-py's Lock: once B has taken the
    lapsed lease and released it, the key is gone as if nobody had taken it."""
    a, b = stalled_then_taken_over(store, "0" * 32)
    b.release()  # B ran the job and left
    assert store.redis.get(a.name) is None
    # the plain Lock would let A take its lapsed key back, as if nothing had happened ...
    plain = Lock(store.redis, a.name, timeout=1, thread_local=False)
    assert plain.acquire(blocking=False, token=a.local.token)
    plain.release()
    # ... the lease does not: B's token is past A's
    with pytest.raises(LockNotOwnedError):
        a.reacquire()
    assert not a.is_current()


class TakeoverSegmenter:
    """The rules, but while A segments, its lease lapses and worker B runs the whole job."""

    def __init__(self, store: JobStore, job_id: str) -> None:
        self.store, self.job_id = store, job_id
        self.inner = load_segmenter("rules", "cpu")
        self.b = Runner(store)

    @property
    def info(self) -> ModelInfo:
        return self.inner.info

    def segment(self, volume: CTVolume, progress: StepCallback | None = None) -> NDArray[np.uint8]:
        self.store.redis.delete(job_lease(self.store.redis, self.job_id, 1).name)  # A's lapsed
        assert self.b.runner.run(self.job_id) == JobState.SUCCEEDED
        return self.inner.segment(volume, progress)  # A goes on, unaware


def test_a_worker_whose_job_was_taken_over_writes_no_results(
    small_ct: Path, tmp_path: Path, store: JobStore, caplog: pytest.LogCaptureFixture
) -> None:
    job = queue_job(small_ct, tmp_path, store, destinations=["pacs"])
    segmenter = TakeoverSegmenter(store, job.id)
    a = Runner(store, segmenter)
    with caplog.at_level(logging.WARNING):
        assert a.runner.run(job.id) is None
    assert any("another worker took the job over" in r.message for r in caplog.records)
    done = store.get(job.id)
    assert done.state == JobState.SUCCEEDED and done.attempts == 2  # B's attempt, not A's
    assert [e.state for e in done.history].count(JobState.SUCCEEDED) == 1
    assert all(Path(p).is_file() for p in done.result_files.values())  # B's outputs stay
    assert segmenter.b.sent == [(job.id, "pacs")] and a.sent == []  # delivered once, by B
