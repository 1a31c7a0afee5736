"""A real Celery worker process on the test Redis: jobs end to end, failures, and a SIGKILL.

These start ``python -m worker`` as a subprocess (its own process group) with the
rule-based segmenter; each test stops every process it started.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from habitus.jobs import ANALYZE_QUEUE, JobState, JobStore
from tests.service.support import TEST_REDIS_URL, write_ct_series
from tests.worker.poison import POISON_DESCRIPTION
from tests.worker.processes import (
    WorkerFactory,
    finished,
    kill_group,
    new_study,
    pool_processes,
    wait_for_job,
)
from tests.worker.support import queue_job, slices_in_order

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_worker_runs_jobs_to_their_end(
    tmp_path: Path, store: JobStore, start_worker: WorkerFactory
) -> None:
    spool = tmp_path / "spool"
    cancelled = queue_job(new_study(tmp_path / "c"), spool, store, send=True)
    store.transition(cancelled.id, JobState.CANCELLED)  # cancelled while still queued
    good = queue_job(new_study(tmp_path / "a"), spool, store, send=True)
    bad = queue_job(new_study(tmp_path / "b"), spool, store, send=False)
    for path in slices_in_order(Path(bad.input_dir))[10:12]:
        path.unlink()  # a gap in the slices
    from service.queue import send_analyze

    send_analyze(TEST_REDIS_URL, bad.id)
    start_worker()

    done = wait_for_job(store, good.id, finished, 180)
    assert done.state == JobState.SUCCEEDED, done.error
    assert Path(done.result_files["seg"]).is_file()
    assert done.attempts == 1 and done.percent == 100.0

    failed = wait_for_job(store, bad.id, finished, 120)
    assert failed.state == JobState.FAILED and "gap" in (failed.error or "").lower()
    assert store.get(cancelled.id).attempts == 0
    # the pool process loaded its segmenter once, before its first job, and reused it
    log = (tmp_path / "worker-0.log").read_text()
    assert log.count("loaded segmenter habitus-rules") == 1
    assert log.index("loaded segmenter") < log.index("attempt 1 started")


def test_a_killed_worker_leaves_the_job_to_another_finished_once(
    tmp_path: Path, store: JobStore, start_worker: WorkerFactory
) -> None:
    study = tmp_path / "study"
    write_ct_series(study / "ct", slices=40, size=160)  # long enough to be killed mid-way
    job = queue_job(study, tmp_path / "spool", store, send=True)
    quick_redelivery = {"visibility_timeout_s": "4", "lease_s": "2", "redelivery_check_s": "1"}
    first = start_worker(**quick_redelivery)
    wait_for_job(store, job.id, lambda r: r.state == JobState.RUNNING and r.percent > 0, 120)
    kill_group(first)  # SIGKILL: no chance to acknowledge, requeue or clean up
    killed = store.get(job.id)
    assert killed.state == JobState.RUNNING, "the job finished before the worker was killed"

    start_worker(**quick_redelivery)
    done = wait_for_job(store, job.id, finished, 240)
    assert done.state == JobState.SUCCEEDED, done.error
    assert done.attempts == 2
    time.sleep(6)  # past the visibility timeout: a stray redelivery would show by now
    again = store.get(job.id)
    assert again.attempts == 2
    assert [e.state for e in again.history].count(JobState.SUCCEEDED) == 1


def test_a_job_killed_at_the_hard_time_limit_ends_failed_with_the_reason(
    tmp_path: Path, store: JobStore, start_worker: WorkerFactory
) -> None:
    study = tmp_path / "study"
    write_ct_series(study / "ct", slices=40, size=160)
    job = queue_job(study, tmp_path / "spool", store, send=True)
    # limits long enough for the small job that follows, short enough for a test
    worker = start_worker(task_soft_time_limit_s="20", task_time_limit_s="24")
    wait_for_job(store, job.id, lambda r: r.state == JobState.RUNNING, 120)
    # A pool process stuck in native code never sees the soft limit's exception; a stopped
    # process behaves alike, so only the hard limit (SIGKILL from the main process) ends it.
    [child] = pool_processes(worker)
    os.kill(child, signal.SIGSTOP)

    failed = wait_for_job(store, job.id, finished, 90)
    assert failed.state == JobState.FAILED
    assert "stopped after 24 s" in (failed.error or "")
    assert "hard time limit" in (failed.error or "")
    assert failed.attempts == 1

    # the worker replaced its pool process and goes on with the next job
    quick = queue_job(new_study(tmp_path / "next"), tmp_path / "spool", store, send=True)
    done = wait_for_job(store, quick.id, finished, 180)
    assert done.state == JobState.SUCCEEDED, done.error
    # the killed job's message was acknowledged: it is not run again
    assert store.get(job.id).attempts == 1 and store.get(job.id).state == JobState.FAILED


def test_a_job_left_running_without_a_message_is_run_again(
    tmp_path: Path, store: JobStore, start_worker: WorkerFactory
) -> None:
    # as after Redis stayed away past HABITUS_REDIS_OUTAGE_S mid-job: the attempt gave up
    # without recording it, the record still running, no lease, nothing in the queue
    job = queue_job(new_study(tmp_path / "study"), tmp_path / "spool", store, send=False)
    store.transition(job.id, JobState.RUNNING, note="attempt 1", attempts=1)
    time.sleep(2.5)  # past the lease period below
    start_worker(lease_s="2", redelivery_check_s="1")
    done = wait_for_job(store, job.id, finished, 120)
    assert done.state == JobState.SUCCEEDED, done.error
    assert done.attempts == 2
    assert any(event.note.startswith("sent again") for event in done.history)


def test_a_series_that_kills_its_worker_fails_after_the_attempt_cap(
    tmp_path: Path, store: JobStore, start_worker: WorkerFactory
) -> None:
    spool = tmp_path / "spool"
    study = tmp_path / "poison"
    write_ct_series(study / "ct", slices=24, size=128, description=POISON_DESCRIPTION)
    poison = queue_job(study, spool, store, send=True)
    # each attempt ends the pool process; Celery gives the message back and starts a new one
    start_worker("--include", "tests.worker.poison_plugin")

    failed = wait_for_job(store, poison.id, finished, 300)
    assert failed.state == JobState.FAILED
    assert failed.attempts == 3  # HABITUS_MAX_ATTEMPTS by default
    assert "the analysis stopped its worker 3 times" in (failed.error or "")

    # the same worker goes on with the next job
    normal = queue_job(new_study(tmp_path / "normal"), spool, store, send=True)
    done = wait_for_job(store, normal.id, finished, 180)
    assert done.state == JobState.SUCCEEDED, done.error
    # the poison job was not sent again: its message is gone and its record unchanged
    assert store.redis.llen(store.keys.queue(ANALYZE_QUEUE)) == 0
    assert store.get(poison.id).model_dump() == failed.model_dump()
    log = (tmp_path / "worker-0.log").read_text()
    assert log.count(f"job {poison.id} attempt") == 3
