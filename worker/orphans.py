"""Running jobs that no worker runs any more are sent to the queue again.

A worker holds a job's lease from the start of an attempt to its end and renews it while it
works (``worker.lease``). When Redis stays away longer than a worker waits for it
(``worker.outage``), the attempt gives up while it cannot record that the job stopped, and
its message may be acknowledged or lost with the broker's connection: the record says
running, nothing holds its lease and no message will bring it back. A worker that dies is
covered by redelivery; this covers what redelivery cannot. Every ``redelivery_check_s`` the
worker's main process looks for running jobs whose lease has lapsed and whose last change is
a lease period old, notes it in the job's history and sends the job again, once: a marker
stops further sends until a worker takes the job (``job_taken``) or the visibility timeout
has passed. The job stays running, so a worker that was only slow to renew its lease
finishes it as usual; the extra message then finds the job ended, or held, and does nothing.
A job sent again counts one more attempt when a worker starts it, so the attempt cap
(``HABITUS_MAX_ATTEMPTS``) bounds it too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

import redis

from habitus.config import redis_keys
from habitus.errors import HabitusError
from habitus.jobs import JobRecord, JobState, JobStore, utc_now
from worker.lease import lease_key

log = logging.getLogger("worker.orphans")

SendAnalyze = Callable[[str], None]

REQUEUE_NOTE = "sent again: its worker stopped without ending it (lease lapsed)"


def resent_key(job_id: str) -> str:
    return redis_keys().job_resent(job_id)


def job_taken(client: redis.Redis, job_id: str) -> None:
    """A worker holds the job's lease now: a later orphaning may send it again."""
    client.delete(resent_key(job_id))


def requeue_orphans(
    store: JobStore, lease_s: float, send: SendAnalyze, resend_after_s: float
) -> list[str]:
    """Send again every running job without a live lease, at most once per
    ``resend_after_s`` until a worker takes it; returns their ids."""
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
        if not store.redis.set(resent_key(job_id), "1", nx=True, ex=max(int(resend_after_s), 1)):
            continue  # sent already and not yet taken
        try:
            store.update(job_id, _note_requeue)
        except HabitusError:  # deleted meanwhile
            continue
        send(job_id)
        requeued.append(job_id)
        log.warning("job %s: %s", job_id, REQUEUE_NOTE, extra={"job_id": job_id})
    return requeued


def _stale(record: JobRecord, lease_s: float) -> bool:
    """Whether the record's last change of state (an attempt's start included) is a lease
    period old: a worker that has just taken the job has not had time to hold its lease."""
    changed = record.history[-1].at if record.history else record.created_at
    return utc_now() - changed >= timedelta(seconds=lease_s)


def _note_requeue(record: JobRecord) -> JobRecord:
    if record.state != JobState.RUNNING:
        return record  # ended meanwhile
    return record.with_state(JobState.RUNNING, REQUEUE_NOTE)


class OrphanSweeper:
    """Runs ``requeue_orphans`` every ``interval_s`` in a daemon thread until stopped."""

    def __init__(
        self,
        store: JobStore,
        lease_s: float,
        send: SendAnalyze,
        interval_s: float,
        resend_after_s: float,
    ) -> None:
        self.store, self.lease_s, self.send = store, lease_s, send
        self.interval_s, self.resend_after_s = interval_s, resend_after_s
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
                requeue_orphans(self.store, self.lease_s, self.send, self.resend_after_s)
            except redis.RedisError as exc:  # Redis away: the next round looks again
                log.info("orphaned jobs not checked: %s", exc)
            except Exception:
                log.exception("orphaned jobs not checked")
