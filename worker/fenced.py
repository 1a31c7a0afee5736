"""Job-record writes that only the current holder of the job's lease can make.

The fencing token is checked in the same transaction as the write (WATCH on the record and
on the lease's fence counter), so a worker whose lease was taken over while it was paused
cannot overwrite what the new holder writes, however late it wakes up.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from habitus.jobs import DeliveryChange, JobChange, JobRecord, JobStore, Precondition
from worker.lease import Lease, LeaseLostError
from worker.outage import patiently

log = logging.getLogger("worker.fenced")


def update_if_current(store: JobStore, job_id: str, lease: Lease, change: JobChange) -> JobRecord:
    """``store.update(job_id, change)``, refused with LeaseLostError unless ``lease`` is
    still the job's current lease (no one has taken it since)."""
    lease.raise_if_lost()
    return store.update(job_id, change, precondition=fence(lease, job_id))


def fence(lease: Lease, job_id: str) -> Precondition:
    """The condition that no one has taken ``lease`` since: its fence counter still holds
    the lease's token when the write commits."""

    def check(values: Mapping[str, bytes | str | None]) -> None:
        raw = values[lease.fence_key]
        current = None if raw is None else int(raw)
        if current != lease.fence_token:
            log.warning(
                "job %s: write refused, the lease was taken over (token %d, now %s)",
                job_id,
                lease.fence_token,
                current,
                extra={"job_id": job_id},
            )
            raise LeaseLostError(f"job {job_id}: lease token {lease.fence_token} superseded")

    return Precondition(keys=(lease.fence_key,), check=check)


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
    lease.raise_if_lost()
    return store.update_delivery(job_id, node, change, precondition=fence(lease, job_id))


def check_current(lease: Lease, what: str) -> None:
    """Raise LeaseLostError, with a log line, unless no one has taken ``lease`` since."""
    if not lease.is_current():
        log.warning(
            "%s: refused, the lease was taken over (token %d superseded)", what, lease.fence_token
        )
        raise LeaseLostError(f"{what}: lease token {lease.fence_token} superseded")
