"""Job-record writes that only the current holder of the job's lease can make.

The fencing token is checked in the same transaction as the write (WATCH on the record and
on the lease's fence counter), so a worker whose lease was taken over while it was paused
cannot overwrite what the new holder writes, however late it wakes up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis

from habitus.jobs import (
    DeliveryChange,
    DeliveryRecord,
    JobChange,
    JobConflictError,
    JobNotFoundError,
    JobRecord,
    JobStore,
    utc_now,
)
from worker.lease import Lease, LeaseLostError
from worker.outage import patiently

log = logging.getLogger("worker.fenced")


def update_if_current(store: JobStore, job_id: str, lease: Lease, change: JobChange) -> JobRecord:
    """``store.update(job_id, change)``, refused with LeaseLostError unless ``lease`` is
    still the job's current lease (no one has taken it since)."""
    lease.raise_if_lost()
    key = store.job_key(job_id)
    for _ in range(store.max_retries):
        with store.redis.pipeline() as pipe:
            try:
                pipe.watch(key, lease.fence_key)
                fence = pipe.get(lease.fence_key)
                if fence is None or int(fence) != lease.token:
                    log.warning(
                        "job %s: write refused, the lease was taken over (token %d, now %s)",
                        job_id,
                        lease.token,
                        fence.decode() if isinstance(fence, bytes) else fence,
                        extra={"job_id": job_id},
                    )
                    raise LeaseLostError(f"job {job_id}: lease token {lease.token} superseded")
                raw = pipe.get(key)
                if raw is None:
                    raise JobNotFoundError(f"no job with id {job_id!r}")
                before = JobRecord.model_validate_json(raw)
                after = change(before)
                pipe.multi()
                pipe.set(key, after.model_dump_json())
                if after.state != before.state:
                    pipe.srem(store.state_key(before.state), job_id)
                    pipe.sadd(store.state_key(after.state), job_id)
                pipe.execute()
                return after
            except redis.WatchError:
                continue
    raise JobConflictError(
        f"job {job_id} changed concurrently {store.max_retries} times in a row; gave up"
    )


@dataclass(frozen=True)
class LeasedJob:
    """One job's record as the holder of its lease writes it: fenced, and patient through
    a Redis outage of up to ``outage_s``."""

    store: JobStore
    job_id: str
    lease: Lease
    outage_s: float

    def update(self, change: JobChange) -> JobRecord:
        return patiently(
            lambda: update_if_current(self.store, self.job_id, self.lease, change),
            self.outage_s,
            f"writing job {self.job_id}",
        )

    def check_current(self) -> None:
        """Raise LeaseLostError unless no one has taken the lease since (asks Redis)."""
        patiently(
            lambda: check_current(self.lease, f"job {self.job_id}"),
            self.outage_s,
            f"checking job {self.job_id}",
        )


def update_delivery_if_current(
    store: JobStore, job_id: str, node: str, lease: Lease, change: DeliveryChange
) -> JobRecord:
    """``store.update_delivery(job_id, node, change)``, fenced like ``update_if_current``."""

    def apply(record: JobRecord) -> JobRecord:
        current = record.deliveries.get(node, DeliveryRecord())
        updated = change(current).model_copy(update={"updated_at": utc_now()})
        return record.model_copy(update={"deliveries": {**record.deliveries, node: updated}})

    return update_if_current(store, job_id, lease, apply)


def check_current(lease: Lease, what: str) -> None:
    """Raise LeaseLostError, with a log line, unless no one has taken ``lease`` since."""
    if not lease.is_current():
        log.warning(
            "%s: refused, the lease was taken over (token %d superseded)", what, lease.token
        )
        raise LeaseLostError(f"{what}: lease token {lease.token} superseded")
