"""Retention over a real Redis and spool: expired or excess finished jobs lose their files and
records; queued, running and still-delivering jobs, young jobs and foreign keys survive."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from habitus.jobs import (
    DeliveryRecord,
    DeliveryState,
    JobRecord,
    JobState,
    JobStore,
    Origin,
    OriginKind,
    utc_now,
)
from habitus.settings import Settings
from service.api import create_app
from service.retention import sweep

NOW = datetime.fromisoformat("2026-06-01T12:00:00+00:00")


def job(
    store: JobStore,
    settings: Settings,
    state: JobState,
    age_days: float,
    **fields: object,
) -> JobRecord:
    """A job created and (if finished) finished ``age_days`` before NOW, with files."""
    when = NOW - timedelta(days=age_days)
    record = JobRecord(
        input_dir="", output_dir="", origin=Origin(kind=OriginKind.REST, client="t"),
        created_at=when, **fields,  # type: ignore[arg-type]
    )  # fmt: skip
    folder = settings.jobs_dir / record.id
    for part in ("input", "output"):
        (folder / part).mkdir(parents=True)
        (folder / part / "x.dcm").write_bytes(b"x")
    record = store.create(
        record.model_copy(
            update={"input_dir": str(folder / "input"), "output_dir": str(folder / "output")}
        )
    )
    if state != JobState.QUEUED:
        store.transition(record.id, JobState.RUNNING)
    if state.is_terminal:
        store.transition(record.id, state)
        store.update(record.id, lambda r: r.model_copy(update={"finished_at": when}))
    return store.get(record.id)


def gone(store: JobStore, record: JobRecord) -> bool:
    folder = Path(record.input_dir).parent
    in_index = store.redis.zscore(store.index_key, record.id) is not None
    in_owner_index = store.redis.zscore(store.owner_key(record.owner), record.id) is not None
    stored = store.redis.exists(store.job_key(record.id))
    return not (folder.exists() or in_index or in_owner_index or stored)


def test_expired_jobs_are_deleted_and_nothing_else(
    settings: Settings, store: JobStore, redis_client: redis.Redis
) -> None:
    week = settings.replaced(api={"retention_days": 7.0})
    expired = [
        job(store, settings, JobState.SUCCEEDED, 30),
        job(store, settings, JobState.FAILED, 8),
        job(store, settings, JobState.CANCELLED, 7.01),
    ]
    kept = [
        job(store, settings, JobState.SUCCEEDED, 6.9),
        job(store, settings, JobState.QUEUED, 40),
        job(store, settings, JobState.RUNNING, 40),
        job(
            store,
            settings,
            JobState.SUCCEEDED,
            40,
            destinations=["pacs"],
            deliveries={"pacs": DeliveryRecord(state=DeliveryState.SENDING)},
        ),  # fmt: skip
    ]
    someone_else, not_a_job = f"{store.keys.prefix}someone:else", f"{store.keys.prefix}not-a-job"
    redis_client.set(someone_else, "keep")
    redis_client.set(not_a_job, "keep")
    foreign = settings.jobs_dir / "not-a-job"
    foreign.mkdir()

    result = sweep(store, week, now=NOW)

    assert result.expired == 3 and result.disk == 0
    assert all(gone(store, r) for r in expired)
    for record in kept:
        assert not gone(store, record)
        assert (Path(record.input_dir) / "x.dcm").exists()
        assert store.get(record.id).state == record.state
    assert redis_client.get(someone_else) == b"keep"
    assert redis_client.get(not_a_job) == b"keep"
    assert foreign.is_dir()
    assert sweep(store, week, now=NOW).expired == 0  # nothing left to do


def test_the_disk_watermark_deletes_the_oldest_finished_jobs_first(
    settings: Settings, store: JobStore
) -> None:
    running = job(store, settings, JobState.RUNNING, 50)
    oldest = job(store, settings, JobState.SUCCEEDED, 40)
    older = job(store, settings, JobState.FAILED, 30)
    young = [job(store, settings, JobState.SUCCEEDED, age) for age in (3, 2, 1)]

    def usage(spool: Path) -> float:  # 10 % per job folder in the spool
        return 10.0 * sum(1 for _ in settings.jobs_dir.iterdir())

    watermark = settings.replaced(api={"retention_disk_percent": 45.0})
    result = sweep(store, watermark, now=NOW, usage=usage)

    assert result.disk == 2 and result.expired == 0  # 6 folders (60 %) -> 4 (40 %)
    assert gone(store, oldest) and gone(store, older)
    assert not gone(store, running) and not any(gone(store, r) for r in young)


def test_another_sweeper_holding_the_lock_is_left_alone(
    settings: Settings, store: JobStore
) -> None:
    expired = job(store, settings, JobState.SUCCEEDED, 30)
    store.redis.set(store.keys.retention_lock, "another process")
    week = settings.replaced(api={"retention_days": 7.0})
    assert sweep(store, week, now=NOW).expired == 0 and not gone(store, expired)
    assert store.redis.get(store.keys.retention_lock) == b"another process"  # not released by us


def test_the_api_sweeps_and_counts_while_it_serves(settings: Settings, store: JobStore) -> None:
    def finished(days_ago: float) -> JobRecord:
        record = job(store, settings, JobState.SUCCEEDED, 0)
        then = utc_now() - timedelta(days=days_ago)
        return store.update(record.id, lambda r: r.model_copy(update={"finished_at": then}))

    expired, young = finished(2), finished(0.5)
    configured = settings.replaced(api={"retention_days": 1.0})
    with TestClient(create_app(configured)) as client:
        wait(lambda: gone(store, expired), 10)
        metrics = client.get("/metrics").text
    assert 'habitus_retention_jobs_deleted_total{reason="age"} 1.0' in metrics
    assert 'habitus_retention_jobs_deleted_total{reason="disk"} 0.0' in metrics
    assert not gone(store, young)


def wait(condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not done within {timeout_s} s")
        time.sleep(0.1)
