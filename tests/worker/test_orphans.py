"""Running jobs that no worker runs any more (no lease, no message) are sent again, once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from habitus.jobs import JobRecord, JobState, JobStore, utc_now
from tests.service.support import write_ct_series
from tests.worker.support import queue_job
from worker.lease import lease_key
from worker.orphans import REQUEUE_NOTE, job_taken, requeue_orphans

LEASE_S = 30.0
RESEND_AFTER_S = 7200.0


def running_job(tmp_path: Path, store: JobStore, started_s_ago: float) -> JobRecord:
    """A job left running, as when its task was cancelled while Redis was away."""
    write_ct_series(tmp_path / "study" / "ct", slices=20, size=32)
    job = queue_job(tmp_path / "study", tmp_path / "spool", store)
    store.transition(job.id, JobState.RUNNING, note="attempt 1", attempts=1)
    return running_job_backdate(store, job.id, started_s_ago)


def running_job_backdate(store: JobStore, job_id: str, seconds: float) -> JobRecord:
    """The job with its last history event ``seconds`` in the past."""

    def backdate(record: JobRecord) -> JobRecord:
        last = record.history[-1].model_copy(update={"at": utc_now() - timedelta(seconds=seconds)})
        return record.model_copy(update={"history": [*record.history[:-1], last]})

    return store.update(job_id, backdate)


def test_a_running_job_without_lease_is_sent_again_once(tmp_path: Path, store: JobStore) -> None:
    job = running_job(tmp_path, store, started_s_ago=60)
    sent: list[str] = []
    assert requeue_orphans(store, LEASE_S, sent.append, RESEND_AFTER_S) == [job.id]
    assert sent == [job.id]
    record = store.get(job.id)
    assert record.state == JobState.RUNNING and record.history[-1].note == REQUEUE_NOTE
    # not again while the message waits for a worker, even once the note has aged
    running_job_backdate(store, job.id, 60)
    assert requeue_orphans(store, LEASE_S, sent.append, RESEND_AFTER_S) == []
    job_taken(store.redis, job.id)  # a worker took it (and, say, was stopped again)
    assert requeue_orphans(store, LEASE_S, sent.append, RESEND_AFTER_S) == [job.id]


def test_a_job_whose_lease_is_held_is_left_alone(tmp_path: Path, store: JobStore) -> None:
    job = running_job(tmp_path, store, started_s_ago=60)
    store.redis.set(lease_key(job.id), "a-worker", px=int(LEASE_S * 1000))
    assert requeue_orphans(store, LEASE_S, lambda _: None, RESEND_AFTER_S) == []
    assert store.get(job.id).state == JobState.RUNNING


def test_a_job_just_started_is_left_alone(tmp_path: Path, store: JobStore) -> None:
    job = running_job(tmp_path, store, started_s_ago=1)  # its worker may not hold the lease yet
    assert requeue_orphans(store, LEASE_S, lambda _: None, RESEND_AFTER_S) == []
    assert store.get(job.id).state == JobState.RUNNING
