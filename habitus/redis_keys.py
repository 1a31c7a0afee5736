"""The names of every Redis key Habitus uses, under one prefix per deployment.

Several deployments (or test runs) can share one Redis when each has a prefix of its own
(``HABITUS_REDIS_PREFIX``): every key the job store, the workers' heartbeats and leases,
retention and the metrics write starts with it, and so do Celery's queues and bookkeeping
(kombu's ``global_keyprefix``). The default prefix keeps the key names Habitus has always
used, Celery's included, so an upgraded deployment finds its jobs and queued messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_PREFIX = "habitus:"

# No glob characters, so that ``SCAN MATCH <prefix>*`` finds a deployment's keys and no other;
# the closing colon keeps "a:" from being the start of "ab:"'s keys.
_PREFIX = re.compile(r"[A-Za-z0-9_.:-]{0,63}:")


def checked_prefix(prefix: str) -> str:
    """``prefix`` when it can name a deployment's keys; else a ValueError that says why."""
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(
            "HABITUS_REDIS_PREFIX: expected up to 64 letters, digits, '_', '.', ':' or '-' "
            f"ending in ':' (such as {DEFAULT_PREFIX!r}); found {prefix[:80]!r}"
        )
    return prefix


@dataclass(frozen=True)
class RedisKeys:
    """Key names under ``prefix``; nothing else in Habitus spells a key."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        checked_prefix(self.prefix)

    # the job store (habitus.jobs)
    def job(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"  # the record, JSON

    @property
    def jobs(self) -> str:
        return f"{self.prefix}jobs"  # sorted set: id by creation time

    def jobs_of_owner(self, owner: str) -> str:
        return f"{self.prefix}jobs:owner:{owner}"  # sorted set: the owner's ids by creation

    def jobs_in_state(self, state: str) -> str:
        return f"{self.prefix}jobs:state:{state}"  # set of ids in that state

    @property
    def owners_indexed(self) -> str:
        return f"{self.prefix}jobs:owners-indexed"  # set once the owner indexes are built

    def series(self, series_instance_uid: str) -> str:
        return f"{self.prefix}series:{series_instance_uid}"  # latest job id of a series

    def study(self, study_instance_uid: str) -> str:
        return f"{self.prefix}study:{study_instance_uid}"  # set of series UIDs with a job

    # metrics read by the API at scrape time
    @property
    def instances_received(self) -> str:
        return f"{self.prefix}metrics:instances_received"

    def stage_seconds(self, stage: str) -> str:
        return f"{self.prefix}metrics:stage_seconds:{stage}"  # hash: histogram of a stage

    @property
    def stage_seconds_stages(self) -> str:
        return f"{self.prefix}metrics:stage_seconds_stages"

    @property
    def retention_deleted(self) -> str:
        return f"{self.prefix}metrics:retention_deleted"  # hash: reason -> jobs deleted

    # coordination between processes
    @property
    def retention_lock(self) -> str:
        return f"{self.prefix}retention:lock"

    def workers(self, queue: str) -> str:
        return f"{self.prefix}workers:{queue}"  # sorted set: live workers of a queue

    def job_lease(self, job_id: str) -> str:
        return f"{self.job(job_id)}:lease"

    def job_resent(self, job_id: str) -> str:
        return f"{self.job(job_id)}:resent"  # an orphaned job was sent again

    def delivery_lease(self, job_id: str, node: str) -> str:
        return f"{self.prefix}delivery-lock:{job_id}:{node}"

    @staticmethod
    def fence(lease: str) -> str:
        return f"{lease}:fence"  # the fencing-token counter of a lease

    # Celery on the Redis broker
    @property
    def broker_prefix(self) -> str:
        """kombu's ``global_keyprefix``: empty under the default prefix, where the queues
        keep the names they had before there was a prefix (messages queued then are kept)."""
        return "" if self.prefix == DEFAULT_PREFIX else self.prefix

    def queue(self, name: str) -> str:
        """The list holding a Celery queue's waiting messages."""
        return f"{self.broker_prefix}{name}"

    def celery_transport_options(self) -> dict[str, str]:
        """Celery's broker and result-backend transport options that prefix its keys."""
        return {"global_keyprefix": self.broker_prefix} if self.broker_prefix else {}
