"""A Redis outage in the middle of an analysis: waited out when short, a clear failure when not.

The integration tests start a Redis server of their own and stop it (saving its data, as a
restart with persistence would) while a real worker analyses a synthetic series.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from habitus.jobs import JobRecord, JobState, JobStore
from service.queue import send_analyze
from tests.service.support import write_ct_series
from tests.worker.processes import RedisServer, WorkerFactory, finished, wait_for_job
from tests.worker.support import queue_job
from worker.lease import job_lease
from worker.outage import RedisOutageError, patiently


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def test_calls_are_retried_with_backoff_until_redis_is_back() -> None:
    fake = FakeTime()
    failures = iter([redis.ConnectionError("refused")] * 5)

    def call() -> str:
        error = next(failures, None)
        if error is not None:
            raise error
        return "done"

    assert patiently(call, 60.0, "testing", fake.sleep, fake.clock) == "done"
    assert fake.waits == [0.2, 0.4, 0.8, 1.6, 3.2]


def test_an_outage_longer_than_the_bound_raises_with_the_reason() -> None:
    fake = FakeTime()

    def call() -> None:
        raise redis.TimeoutError("timed out")

    with pytest.raises(RedisOutageError, match="unreachable for more than 10 s .* while testing"):
        patiently(call, 10.0, "testing", fake.sleep, fake.clock)
    assert fake.now == pytest.approx(10.0)  # it waited the whole bound, not longer
    assert max(fake.waits) <= 5.0


def test_other_redis_errors_are_not_retried() -> None:
    def call() -> None:
        raise redis.ResponseError("WRONGTYPE")

    with pytest.raises(redis.ResponseError):
        patiently(call, 10.0, "testing", FakeTime().sleep, FakeTime().clock)


@pytest.mark.integration
def test_a_lease_outlives_a_redis_restart_and_reports_a_long_outage(
    private_redis: RedisServer,
) -> None:
    # no retries inside redis-py: the lease sees each failure when it happens
    client = redis.Redis.from_url(private_redis.url, retry=Retry(NoBackoff(), 0))
    lease = job_lease(client, "0" * 32, ttl_s=0.6, outage_s=3.0)
    assert lease.acquire()
    try:
        private_redis.stop()
        time.sleep(1.0)  # past the lease's TTL: it lapses in the saved data
        lease.raise_if_lost()  # within the bound: nothing to report yet
        time.sleep(3.0)
        with pytest.raises(RedisOutageError, match="more than 3 s"):
            lease.raise_if_lost()
        private_redis.start()
        time.sleep(1.0)  # renewals back: the lapsed lease is taken back, nobody took it
        lease.raise_if_lost()
        assert lease.is_current() and lease.owned()
    finally:
        lease.release()


def running_study(tmp_path: Path, server: RedisServer) -> tuple[JobStore, JobRecord]:
    """A job of a series long enough to be segmenting when Redis goes, queued on ``server``."""
    store = JobStore(redis.Redis.from_url(server.url))
    write_ct_series(tmp_path / "study" / "ct", slices=48, size=160)
    job = queue_job(tmp_path / "study", tmp_path / "spool", store, send=False)
    send_analyze(server.url, job.id)
    return store, job


def outage(server: RedisServer, seconds: float) -> None:
    server.stop()
    time.sleep(seconds)
    server.start()


def segmenting(record: JobRecord) -> bool:
    return record.state == JobState.RUNNING and record.stage == "segment"


@pytest.mark.integration
@pytest.mark.slow
def test_a_short_redis_outage_mid_analysis_is_waited_out(
    tmp_path: Path, private_redis: RedisServer, start_worker: WorkerFactory
) -> None:
    store, job = running_study(tmp_path, private_redis)
    # a lease shorter than the outage: it lapses meanwhile, and is taken back; the outage
    # bound is the default (60 s)
    start_worker(redis_url=private_redis.url, lease_s="2")
    wait_for_job(store, job.id, segmenting, 180)

    outage(private_redis, 30.0)

    done = wait_for_job(store, job.id, finished, 240)
    assert done.state == JobState.SUCCEEDED, done.error
    assert done.attempts == 1  # not started again
    assert all(Path(p).is_file() for p in done.result_files.values())
    log = (tmp_path / "worker-0.log").read_text()
    assert "Redis unreachable while writing job" in log or "not renewed" in log


@pytest.mark.integration
@pytest.mark.slow
def test_a_redis_outage_past_the_bound_fails_the_job_with_the_reason(
    tmp_path: Path, private_redis: RedisServer, start_worker: WorkerFactory
) -> None:
    store, job = running_study(tmp_path, private_redis)
    start_worker(redis_url=private_redis.url, redis_outage_s="2", lease_s="10")
    wait_for_job(store, job.id, segmenting, 180)

    outage(private_redis, 3.0)  # longer than the bound, shorter than twice it

    failed = wait_for_job(store, job.id, finished, 120)
    assert failed.state == JobState.FAILED
    assert "Redis was unreachable for more than 2 s" in (failed.error or "")
    assert failed.attempts == 1
    assert list(Path(failed.output_dir).iterdir()) == []  # no half set of results left
