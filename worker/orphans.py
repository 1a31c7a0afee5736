"""Running jobs that no worker runs any more are queued again.

A worker holds a job's lease from the start of an attempt to its end and renews it while it
works (``worker.lease``). When Redis goes away in the middle of a job, Celery cancels the
task and, once Redis is back, acknowledges its message, while the worker could not record
that the job stopped: the record says running, nothing holds its lease and no message will
bring it back. A worker that dies is covered by redelivery; this covers what redelivery
cannot. Every ``redelivery_check_s`` the worker's main process looks for running jobs whose
lease has lapsed and whose record has not changed for a lease period, moves each back to
queued with the reason, and sends it again. The analysis is idempotent, so at worst a job
runs twice; it is never lost.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

import redis

from habitus.errors import HabitusError
from habitus.jobs import JobRecord, JobState, JobStore, utc_now
from worker.lease import lease_key

log = logging.getLogger("worker.orphans")

SendAnalyze = Callable[[str], None]

REQUEUE_NOTE = "queued again: its worker stopped without ending it (lease lapsed)"


def requeue_orphans(store: JobStore, lease_s: float, send: SendAnalyze) -> list[str]:
    """Queue again every running job without a live lease; returns their ids."""
    requeued = []
    for job_id in sorted(store.ids_in_state(JobState.RUNNING)):
        if store.redis.exists(lease_key(job_id)):
            continue
        try:
            job = store.get(job_id)
        except HabitusError:  # deleted meanwhile
            continue
        if not _stale(job, lease_s):
            continue
        try:
            store.update(job.id, lambda record: _requeue(record, lease_s))
        except HabitusError:  # finished, deleted or taken meanwhile
            continue
        if store.get(job.id).state != JobState.QUEUED:
            continue  # a worker touched it meanwhile: it is being run
        send(job.id)
        requeued.append(job.id)
        log.warning("job %s: %s; sent again", job.id, REQUEUE_NOTE, extra={"job_id": job.id})
    return requeued


def _stale(record: JobRecord, lease_s: float) -> bool:
    """Whether the record's last change of state (an attempt's start included) is a lease
    period old: a worker that has just taken the job has not had time to hold its lease."""
    changed = record.history[-1].at if record.history else record.created_at
    return utc_now() - changed >= timedelta(seconds=lease_s)


def _requeue(record: JobRecord, lease_s: float) -> JobRecord:
    if record.state != JobState.RUNNING or not _stale(record, lease_s):
        return record  # re-read inside the update: a worker has just taken it
    return record.with_state(JobState.QUEUED, REQUEUE_NOTE, stage=None, percent=0.0)


class OrphanSweeper:
    """Runs ``requeue_orphans`` every ``interval_s`` in a daemon thread until stopped."""

    def __init__(
        self, store: JobStore, lease_s: float, send: SendAnalyze, interval_s: float
    ) -> None:
        self.store, self.lease_s, self.send, self.interval_s = store, lease_s, send, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="habitus-orphans", daemon=True)

    def start(self) -> OrphanSweeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                requeue_orphans(self.store, self.lease_s, self.send)
            except redis.RedisError as exc:  # Redis away: the next round looks again
                log.info("orphaned jobs not checked: %s", exc)
            except Exception:
                log.exception("orphaned jobs not checked")
