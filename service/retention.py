"""Retention: finished jobs lose their inputs, outputs and records after a while.

Two rules, both off by default (nothing is deleted unless configured):

- ``HABITUS_RETENTION_DAYS``: a job finished more than this many days ago is deleted;
- ``HABITUS_RETENTION_DISK_PERCENT``: while the spool's file system is fuller than this,
  the oldest finished jobs are deleted, however young.

A job that is queued or running, or whose results are still being sent to a PACS node, is
never deleted. Each deletion is audited and counted (``habitus_retention_jobs_deleted_total``).

The sweeper is a thread of the API process, started and stopped with the app, rather than a
Celery beat entry: the API already holds the spool and the job store, and beat would be one
more process that must run exactly once per deployment. Several API replicas are safe: a
Redis lock lets one sweep at a time, and deleting a deleted job is a no-op.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from redis.exceptions import LockError

from habitus.jobs import DeliveryState, JobNotFoundError, JobRecord, JobStore, utc_now
from habitus.settings import Settings
from service.audit import RETENTION_CLIENT, audit
from service.jobfiles import remove_job_files
from service.queue import job_store

log = logging.getLogger("service.retention")

LOCK_S = 600  # a sweeper that died holding the lock holds it no longer than this
_BATCH = 200
AGE, DISK = "age", "disk"  # why a job was deleted: the metric's label
_IN_FLIGHT = frozenset({DeliveryState.PENDING, DeliveryState.SENDING})

DiskPercent = Callable[[Path], float]


def disk_percent(path: Path) -> float:
    """How full (%) the file system holding ``path`` is."""
    usage = shutil.disk_usage(path)
    return 100.0 * usage.used / usage.total if usage.total else 0.0


@dataclass(frozen=True)
class SweepResult:
    expired: int = 0  # jobs deleted for their age
    disk: int = 0  # jobs deleted to bring the disk under the watermark


def removable(record: JobRecord) -> bool:
    """A finished job that no worker will touch again."""
    return record.state.is_terminal and not any(
        d.state in _IN_FLIGHT for d in record.deliveries.values()
    )


def sweep(
    store: JobStore,
    settings: Settings,
    now: datetime | None = None,
    usage: DiskPercent = disk_percent,
) -> SweepResult:
    """One round of both rules; does nothing while another process holds the lock."""
    lock = store.redis.lock(store.keys.retention_lock, timeout=LOCK_S, blocking=False)
    if not lock.acquire():
        return SweepResult()
    try:
        now = now or utc_now()
        expired = disk = 0
        if settings.api.retention_days > 0:
            cutoff = now - timedelta(days=settings.api.retention_days)
            expired = _delete_oldest(store, cutoff, lambda r: _finished_before(r, cutoff), AGE)
        if settings.api.retention_disk_percent > 0:
            settings.spool_dir.mkdir(parents=True, exist_ok=True)

            def over_watermark(_: JobRecord) -> bool:
                return usage(settings.spool_dir) > settings.api.retention_disk_percent

            disk = _delete_oldest(store, now, over_watermark, DISK, stop_when_false=True)
        return SweepResult(expired=expired, disk=disk)
    finally:
        # Given back only if still ours: a lock that lapsed may be another sweeper's now.
        with contextlib.suppress(LockError):
            lock.release()


def _finished_before(record: JobRecord, cutoff: datetime) -> bool:
    return record.finished_at is not None and record.finished_at < cutoff


def _delete_oldest(
    store: JobStore,
    created_before: datetime,
    wanted: Callable[[JobRecord], bool],
    reason: str,
    stop_when_false: bool = False,
) -> int:
    """Delete removable jobs created before ``created_before`` for which ``wanted`` holds,
    oldest first; with ``stop_when_false``, stop at the first for which it does not."""
    deleted = offset = 0
    while ids := store.created_before(created_before, _BATCH, offset):
        for job_id in ids:
            try:
                record = store.get(job_id)
            except JobNotFoundError:  # deleted meanwhile
                continue
            if not removable(record):
                offset += 1
                continue
            if not wanted(record):
                if stop_when_false:
                    return deleted
                offset += 1
                continue
            _delete(store, record, reason)
            deleted += 1
    return deleted


def _delete(store: JobStore, record: JobRecord, reason: str) -> None:
    remove_job_files(record)  # files first: a record never outlives its files for long
    try:
        store.delete(record.id)
    except JobNotFoundError:
        return  # deleted by a client meanwhile: theirs is the audited deletion
    store.redis.hincrby(store.keys.retention_deleted, reason, 1)
    audit("delete", "ok", key=None, client=RETENTION_CLIENT, job_id=record.id, reason=reason)
    log.info("job %s deleted by retention (%s)", record.id, reason, extra={"job_id": record.id})


def deleted_counts(store: JobStore) -> dict[str, int]:
    """Jobs deleted by retention so far, by reason (``age``, ``disk``)."""
    raw: dict[Any, Any] = store.redis.hgetall(store.keys.retention_deleted)
    return {(k.decode() if isinstance(k, bytes) else str(k)): int(v) for k, v in raw.items()}


def enabled(settings: Settings) -> bool:
    return settings.api.retention_days > 0 or settings.api.retention_disk_percent > 0


class RetentionSweeper:
    """Sweeps at start and then every ``HABITUS_RETENTION_INTERVAL_S`` in a daemon thread."""

    def __init__(self, settings: Settings, store: JobStore) -> None:
        self.settings = settings
        self.store = store
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> RetentionSweeper:
        self._thread = threading.Thread(target=self._run, name="habitus-retention", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                result = sweep(self.store, self.settings)
                if result.expired or result.disk:
                    log.info(
                        "retention: %d jobs deleted for age, %d for disk space",
                        result.expired,
                        result.disk,
                    )
            except Exception:  # Redis away, a file system error: the next round tries again
                log.exception("retention sweep failed")
            self._stop.wait(self.settings.api.retention_interval_s)


@asynccontextmanager
async def retention_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Runs the sweeper while the app serves, when a retention rule is configured."""
    settings: Settings = app.state.settings
    if not enabled(settings):
        yield
        return
    sweeper = RetentionSweeper(settings, job_store(settings.redis.url)).start()
    try:
        yield
    finally:
        sweeper.stop()
