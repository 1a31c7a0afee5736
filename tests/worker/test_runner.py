"""The analyze task's steps, run in-process against real Redis and the real pipeline."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from habitus.jobs import JobChange, JobRecord, JobState, JobStore
from habitus.progress import StepCallback
from habitus.segment.base import ModelInfo, Segmenter
from habitus.segment.loader import load_segmenter
from habitus.settings import Settings, WorkerSettings
from habitus.volume import CTVolume
from tests.worker.support import queue_job, slices_in_order
from worker import fenced
from worker.fenced import update_if_current
from worker.lease import Lease, job_lease
from worker.runner import COMPLETION_MARKER, JobRunner, LeaseHeldError

SETTINGS = Settings(segmenter="rules", worker=WorkerSettings(progress_interval_s=0.0, lease_s=5.0))


class Runner:
    """A JobRunner whose segmenter loads and delivery sends are recorded."""

    def __init__(self, store: JobStore, segmenter: Segmenter | None = None) -> None:
        self.loads: list[tuple[str, str]] = []
        self.sent: list[tuple[str, str]] = []
        self.segmenter = segmenter
        self.runner = JobRunner(store, SETTINGS, self._segmenter_for, self._send)

    def _segmenter_for(self, kind: str, device: str) -> Segmenter:
        self.loads.append((kind, device))
        return self.segmenter or load_segmenter("rules", "cpu")

    def _send(self, job_id: str, node: str) -> None:
        self.sent.append((job_id, node))


class CancellingSegmenter:
    """The rule-based segmenter, but the job is cancelled (as the API does) mid-way."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.inner = load_segmenter("rules", "cpu")
        self.job_id = ""

    @property
    def info(self) -> ModelInfo:
        return self.inner.info

    def segment(self, volume: CTVolume, progress: StepCallback | None = None) -> NDArray[np.uint8]:
        self.store.update(self.job_id, lambda r: r.model_copy(update={"cancel_requested": True}))
        assert progress is not None
        progress(0.5)  # the next progress step notices the request
        raise AssertionError("the analysis went on after being cancelled")


class BrokenSegmenter(CancellingSegmenter):
    def segment(self, volume: CTVolume, progress: StepCallback | None = None) -> NDArray[np.uint8]:
        raise RuntimeError("index 7 is out of bounds for axis 0 with size 3")


def test_a_job_runs_to_succeeded_with_results_and_deliveries(
    small_ct: Path, tmp_path: Path, store: JobStore
) -> None:
    job = queue_job(small_ct, tmp_path, store, destinations=["pacs", "archive"])
    runner = Runner(store)
    assert runner.runner.run(job.id) == JobState.SUCCEEDED
    done = store.get(job.id)
    assert done.percent == 100.0 and done.attempts == 1 and done.stage is None
    assert set(done.result_files) >= {"seg", "sr", "report"}
    assert all(Path(p).is_file() for p in done.result_files.values())
    assert {"segment", "queued", "total"} <= set(done.timings_s)
    assert runner.loads == [("rules", "auto")]
    assert sorted(runner.sent) == [(job.id, "archive"), (job.id, "pacs")]
    assert all(d.dispatched_at is not None for d in done.deliveries.values())
    assert "segment" in store.stage_seconds()
    # the same task delivered again: nothing is analysed or sent twice
    assert runner.runner.run(job.id) == JobState.SUCCEEDED
    assert len(runner.sent) == 2 and len(runner.loads) == 1
    assert [e.state for e in store.get(job.id).history].count(JobState.SUCCEEDED) == 1


def test_progress_is_written_as_the_pipeline_reports_it(
    small_ct: Path, tmp_path: Path, store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = queue_job(small_ct, tmp_path, store)
    seen: list[tuple[str | None, float]] = []

    def recording_update(
        store: JobStore, job_id: str, lease: Lease, change: JobChange
    ) -> JobRecord:
        record = update_if_current(store, job_id, lease, change)
        seen.append((record.stage, record.percent))
        return record

    # the running attempt writes through the fenced update
    monkeypatch.setattr(fenced, "update_if_current", recording_update)
    Runner(store).runner.run(job.id)
    stages = [stage for stage, _ in seen if stage]
    assert {"read", "volume", "segment", "outputs"} <= set(stages)
    percents = [p for s, p in seen if s]
    assert percents == sorted(percents)


def test_bad_input_fails_the_job_with_the_reason(
    small_ct: Path, tmp_path: Path, store: JobStore
) -> None:
    job = queue_job(small_ct, tmp_path, store)
    for path in slices_in_order(Path(job.input_dir))[5:8]:
        path.unlink()  # a gap in the slices: not a regular volume any more
    assert Runner(store).runner.run(job.id) == JobState.FAILED
    failed = store.get(job.id)
    assert failed.error and "gap" in failed.error.lower()


def test_unexpected_errors_fail_with_a_reference_and_log_the_traceback(
    small_ct: Path, tmp_path: Path, store: JobStore, caplog: pytest.LogCaptureFixture
) -> None:
    job = queue_job(small_ct, tmp_path, store)
    with caplog.at_level(logging.ERROR, logger="worker.runner"):
        state = Runner(store, BrokenSegmenter(store)).runner.run(job.id)
    assert state == JobState.FAILED
    error = store.get(job.id).error or ""
    assert "internal error" in error and "out of bounds" not in error
    reference = error.rsplit(" ", 1)[-1]
    assert any(reference in r.getMessage() and r.exc_info for r in caplog.records)


def test_a_job_cancelled_while_running_stops(
    small_ct: Path, tmp_path: Path, store: JobStore
) -> None:
    job = queue_job(small_ct, tmp_path, store)
    segmenter = CancellingSegmenter(store)
    segmenter.job_id = job.id
    assert Runner(store, segmenter).runner.run(job.id) == JobState.CANCELLED
    assert store.get(job.id).result_files == {}


def test_a_job_superseded_while_running_ends_with_the_reason(
    small_ct: Path, tmp_path: Path, store: JobStore
) -> None:
    job = queue_job(small_ct, tmp_path, store)
    store.update(
        job.id,
        lambda r: r.model_copy(
            update={"cancel_requested": True, "cancel_reason": "superseded by version 2 (job x)"}
        ),
    )
    assert Runner(store).runner.run(job.id) == JobState.CANCELLED
    record = store.get(job.id)
    assert record.error == "superseded by version 2 (job x)"
    assert record.history[-1].note.endswith("superseded by version 2 (job x)")


def test_a_job_cancelled_before_it_starts_is_not_analysed(
    small_ct: Path, tmp_path: Path, store: JobStore
) -> None:
    job = queue_job(small_ct, tmp_path, store)
    store.update(job.id, lambda r: r.model_copy(update={"cancel_requested": True}))
    runner = Runner(store)
    assert runner.runner.run(job.id) == JobState.CANCELLED
    assert runner.loads == []


def test_a_deleted_job_is_skipped(small_ct: Path, tmp_path: Path, store: JobStore) -> None:
    job = queue_job(small_ct, tmp_path, store)
    store.delete(job.id)
    assert Runner(store).runner.run(job.id) is None


def test_a_job_held_by_another_worker_is_retried_later(
    small_ct: Path, tmp_path: Path, store: JobStore
) -> None:
    job = queue_job(small_ct, tmp_path, store)
    other = job_lease(store.redis, job.id, ttl_s=5.0)
    assert other.acquire()
    try:
        with pytest.raises(LeaseHeldError) as held:
            Runner(store).runner.run(job.id)
        assert 0 < held.value.retry_in_s <= 5.0
        assert store.get(job.id).state == JobState.QUEUED
    finally:
        other.release()


def test_outputs_completed_before_a_crash_are_not_analysed_again(
    small_ct: Path, tmp_path: Path, store: JobStore
) -> None:
    first = queue_job(small_ct, tmp_path / "a", store)
    Runner(store).runner.run(first.id)
    # a second job whose worker died after writing every output, before recording success
    second = queue_job(small_ct, tmp_path / "b", store)
    shutil.copytree(first.output_dir, second.output_dir, dirs_exist_ok=True)
    marker = (Path(second.output_dir) / COMPLETION_MARKER).read_text()
    (Path(second.output_dir) / COMPLETION_MARKER).write_text(
        marker.replace(first.output_dir, second.output_dir)
    )
    store.transition(second.id, JobState.RUNNING)
    runner = Runner(store)
    assert runner.runner.run(second.id) == JobState.SUCCEEDED
    assert runner.loads == []  # no segmenter was needed
    assert store.get(second.id).attempts == 1


def test_a_job_failed_from_outside_the_runner_keeps_a_reason_and_stays_final(
    store: JobStore, small_ct: Path, tmp_path: Path
) -> None:
    runner = Runner(store).runner
    job = queue_job(small_ct, tmp_path / "spool", store)
    store.update(job.id, lambda r: r.with_state(JobState.RUNNING, attempts=1, stage="segment"))
    assert runner.fail_stopped(job.id, 3600) == JobState.FAILED
    failed = store.get(job.id)
    assert failed.error is not None
    assert "stopped after 3600 s during the segment stage, the hard time limit" in failed.error
    # a second report of the same task (the signal and the pool's callback) changes nothing
    assert runner.fail_unexpected(job.id, RuntimeError("late")) == JobState.FAILED
    assert store.get(job.id).error == failed.error
