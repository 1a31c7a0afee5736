"""Running one job: the steps of the analyze task, each skipped when already done.

A task may arrive twice (redelivered after a worker died, or by Redis after its visibility
timeout). Running it again is safe: a job already finished is left alone (its deliveries are
queued if they were not), a job held by another live worker is retried later, and an
analysis that completed before a crash is not run again (the marker written beside its
outputs is read). The pipeline's UIDs are deterministic, so an analysis that is run again
writes the same objects.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import redis
from celery.exceptions import SoftTimeLimitExceeded
from pydantic import BaseModel, Field

from habitus.errors import HabitusError
from habitus.jobs import (
    DeliveryRecord,
    DeliveryState,
    JobConflictError,
    JobNotFoundError,
    JobRecord,
    JobState,
    JobStore,
    job_folders,
    utc_now,
)
from habitus.pipeline import AnalysisOptions, analyze
from habitus.segment.base import Segmenter
from habitus.segment.loader import SegmenterChoice
from habitus.settings import Settings
from worker.fenced import LeasedJob
from worker.job_progress import JobCancelledError, JobProgress, JobUpdate
from worker.lease import LeaseLostError, job_lease
from worker.merge import merged
from worker.orphans import job_taken
from worker.outage import RedisOutageError

log = logging.getLogger("worker.runner")

COMPLETION_MARKER = ".habitus-complete.json"


class LeaseHeldError(Exception):
    """Another live worker is running this job; try again after ``retry_in_s``."""

    def __init__(self, job_id: str, retry_in_s: float) -> None:
        super().__init__(f"job {job_id} is running in another worker")
        self.retry_in_s = retry_in_s


class OutputsWritten(BaseModel):
    """Written beside the outputs once the analysis has finished writing them."""

    files: dict[str, str]
    warnings: list[str] = Field(default_factory=list)
    timings_s: dict[str, float] = Field(default_factory=dict)


SegmenterFor = Callable[[str, str], Segmenter]
"""(segmenter kind, device) -> a loaded segmenter, reused across jobs by the caller."""

SendDelivery = Callable[[str, str], None]
"""(job id, node name) -> queue the delivery task."""


@dataclass
class JobRunner:
    store: JobStore
    settings: Settings
    segmenter_for: SegmenterFor
    send_delivery: SendDelivery

    def run(self, job_id: str) -> JobState | None:
        """Bring a job to a final state; None when the job no longer exists."""
        context = {"job_id": job_id}
        try:
            record = self.store.get(job_id)
        except JobNotFoundError:
            log.info("job %s no longer exists; nothing to do", job_id, extra=context)
            return None
        context["series_uid"] = record.series_instance_uid or ""
        if record.state == JobState.SUCCEEDED:
            self.dispatch_deliveries(job_id)
            return record.state
        if record.state.is_terminal:
            log.info("job %s is %s; skipped", job_id, record.state, extra=context)
            return record.state
        if record.cancel_requested:
            return self._finish_cancelled(job_id, "cancelled before it started")

        lease = job_lease(
            self.store.redis, job_id, self.settings.worker.lease_s, self.settings.redis.outage_s
        )
        if not lease.acquire():
            raise LeaseHeldError(job_id, max(lease.remaining_s(), 1.0))
        job_taken(self.store.redis, job_id)
        try:
            return self._run_leased(
                LeasedJob(self.store, job_id, lease, self.settings.redis.outage_s), context
            )
        except JobNotFoundError:
            log.info("job %s was deleted while running", job_id, extra=context)
            return None
        except LeaseLostError:
            # another worker took the job over while this one was paused or cut off from
            # Redis: that one writes the results; this attempt leaves without a trace
            log.warning(
                "job %s: another worker took the job over; this attempt stopped without "
                "writing results",
                job_id,
                extra=context,
            )
            return None
        finally:
            with contextlib.suppress(redis.RedisError):  # it lapses by itself
                lease.release()

    def _run_leased(self, job: LeasedJob, context: dict[str, str]) -> JobState:
        job_id = job.job_id
        try:
            record = job.update(partial(_start, max_attempts=self.settings.worker.max_attempts))
        except JobConflictError:  # finished or cancelled between the first read and now
            return self.store.get(job_id).state
        if record.state == JobState.FAILED:
            log.warning("job %s: %s", job_id, record.error, extra=context)
        if record.state != JobState.RUNNING:
            return record.state
        log.info(
            "job %s attempt %d started",
            job_id,
            record.attempts,
            extra={**context, "attempt": record.attempts},
        )
        output_dir = Path(record.output_dir)
        outputs_written = read_outputs_written(output_dir)
        if outputs_written is not None:
            log.info("job %s: outputs already complete; analysis skipped", job_id, extra=context)
        else:
            try:
                outputs_written = self._analyze(record, job)
            except LeaseLostError:
                raise  # the outputs now belong to the new holder: leave them
            except JobCancelledError:
                job.check_current()
                _discard_outputs(record)
                return self._finish_cancelled(job_id, "cancelled while running", job.update)
            except RedisOutageError as exc:
                log.warning("job %s stopped: %s", job_id, exc, extra=context)
                return self._fail_attempt(job, record, str(exc))
            except HabitusError as exc:
                log.warning("job %s refused: %s", job_id, exc, extra=context)
                return self._fail_attempt(job, record, str(exc))
            except SoftTimeLimitExceeded:
                log.warning("job %s exceeded the time limit", job_id, extra=context)
                return self._fail_attempt(
                    job,
                    record,
                    f"the analysis took longer than the limit of "
                    f"{self.settings.worker.task_soft_time_limit_s} s and was stopped",
                )
            except Exception as exc:  # unexpected: keep the traceback in the log only
                reference = uuid.uuid4().hex[:12]
                log.exception(
                    "job %s failed unexpectedly (reference %s)", job_id, reference, extra=context
                )
                return self._fail_attempt(
                    job,
                    record,
                    f"internal error during the analysis ({type(exc).__name__}); the worker "
                    f"logs hold the details under reference {reference}",
                )
        state = self._finish_succeeded(job, outputs_written)
        if state == JobState.SUCCEEDED:
            for stage, seconds in outputs_written.timings_s.items():
                self.store.observe_stage_seconds(stage, seconds)
            self.dispatch_deliveries(job_id)
        return state

    def _analyze(self, record: JobRecord, job: LeasedJob) -> OutputsWritten:
        output_dir = Path(record.output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        options = analysis_options(record.options, self.settings)
        segmenter = self.segmenter_for(options.segmenter, options.device)
        progress = JobProgress(job.update, record.id, self.settings.worker.progress_interval_s)
        result = analyze(
            Path(record.input_dir), output_dir, options, progress=progress, segmenter=segmenter
        )
        outputs_written = OutputsWritten(
            files={kind: str(path) for kind, path in result.files.items()},
            warnings=list(result.report.warnings),
            timings_s=dict(result.report.timings_s),
        )
        job.check_current()  # a superseded attempt does not mark the outputs complete
        write_outputs_written(output_dir, outputs_written)
        return outputs_written

    def _fail_attempt(self, job: LeasedJob, record: JobRecord, reason: str) -> JobState:
        """End the job failed; what this attempt wrote in its output folder goes, so a
        failed job leaves no half set of results behind."""
        job.check_current()
        _discard_outputs(record)
        return self._finish_failed(job.job_id, reason, job.update)

    def _finish_succeeded(self, job: LeasedJob, outputs_written: OutputsWritten) -> JobState:
        def finish(record: JobRecord) -> JobRecord:
            if record.state != JobState.RUNNING:
                return record
            if record.cancel_requested:
                return record.with_state(JobState.CANCELLED, "cancelled as it finished")
            timings = {**outputs_written.timings_s, **_wait_and_run(record)}
            return record.with_state(
                JobState.SUCCEEDED,
                f"attempt {record.attempts}",
                stage=None,
                percent=100.0,
                result_files=outputs_written.files,
                warnings=merged(record.warnings, outputs_written.warnings),
                timings_s=timings,
            )

        record = job.update(finish)
        log.info("job %s %s", job.job_id, record.state, extra={"job_id": job.job_id})
        return record.state

    def fail_stopped(self, job_id: str, limit_s: float) -> JobState | None:
        """Fail a job whose process was killed at the hard time limit (called by the parent).

        Celery acknowledges the message of a task it killed for its time limit, so nothing
        runs the job again: without this its record would stay running.
        """
        try:
            stage = self.store.get(job_id).stage
        except JobNotFoundError:
            return None
        during = f" during the {stage} stage" if stage else ""
        reason = (
            f"the analysis was stopped after {limit_s:g} s{during}, the hard time limit "
            "(HABITUS_TASK_TIME_LIMIT_S); its worker process did not respond to the soft "
            "limit and was killed"
        )
        log.warning("job %s killed at the hard time limit", job_id, extra={"job_id": job_id})
        return self._finish_failed(job_id, reason)

    def fail_unexpected(self, job_id: str, exc: BaseException) -> JobState:
        """Fail a job whose task raised past the runner: its message is acknowledged too."""
        reference = uuid.uuid4().hex[:12]
        log.error(
            "job %s: task failed (reference %s): %r",
            job_id,
            reference,
            exc,
            extra={"job_id": job_id},
        )
        return self._finish_failed(
            job_id,
            f"internal error in the worker ({type(exc).__name__}); the worker logs hold "
            f"the details under reference {reference}",
        )

    def _finish_failed(self, job_id: str, reason: str, update: JobUpdate | None = None) -> JobState:
        def fail(record: JobRecord) -> JobRecord:
            if record.state.is_terminal:
                return record
            return record.with_state(
                JobState.FAILED, f"attempt {record.attempts}", error=reason,
                timings_s={**record.timings_s, **_wait_and_run(record)},
            )  # fmt: skip

        return (update or partial(self.store.update, job_id))(fail).state

    def _finish_cancelled(
        self, job_id: str, note: str, update: JobUpdate | None = None
    ) -> JobState:
        def cancel(record: JobRecord) -> JobRecord:
            if record.state.is_terminal:
                return record
            reason = record.cancel_reason
            return record.with_state(
                JobState.CANCELLED, f"{note}: {reason}" if reason else note, error=reason
            )

        state = (update or partial(self.store.update, job_id))(cancel).state
        log.info("job %s %s", job_id, note, extra={"job_id": job_id})
        return state

    def dispatch_deliveries(self, job_id: str) -> list[str]:
        """Queue one delivery per destination not yet dispatched; returns the nodes queued."""
        queued: list[str] = []
        for node in self.store.get(job_id).destinations:
            if not self._claim_delivery(job_id, node):
                continue
            try:
                self.send_delivery(job_id, node)
            except Exception as exc:
                log.exception("job %s: delivery to %s not queued", job_id, node)
                self.store.update_delivery(
                    job_id,
                    node,
                    lambda d, e=exc: d.model_copy(  # type: ignore[misc]
                        update={
                            "state": DeliveryState.FAILED,
                            "last_error": f"could not be queued ({type(e).__name__}: {e})",
                        }
                    ),
                )
                continue
            queued.append(node)
        if queued:
            log.info(
                "job %s: deliveries queued to %s",
                job_id,
                ",".join(queued),
                extra={"job_id": job_id},
            )
        return queued

    def _claim_delivery(self, job_id: str, node: str) -> bool:
        """Mark a destination dispatched; False when it already was (by this or a past run)."""
        claimed: list[bool] = []

        def claim(delivery: DeliveryRecord) -> DeliveryRecord:
            claimed[:] = [delivery.dispatched_at is None]
            if delivery.dispatched_at is not None:
                return delivery
            return delivery.model_copy(update={"dispatched_at": utc_now()})

        self.store.update_delivery(job_id, node, claim)
        return claimed == [True]


def _start(record: JobRecord, max_attempts: int) -> JobRecord:
    """The job's next attempt, or its end: every attempt so far stopped its worker without
    finishing (an attempt that ends, ends the job), so the series is likely to do it again."""
    if record.state == JobState.RUNNING and record.attempts >= max_attempts:
        return record.with_state(
            JobState.FAILED,
            f"not started again after {record.attempts} attempts",
            error=(
                f"the analysis stopped its worker {record.attempts} times without finishing "
                f"(HABITUS_MAX_ATTEMPTS={max_attempts}); it is not tried again: the series "
                "may be one the pipeline cannot process (the worker logs tell how each "
                "attempt ended)"
            ),
            timings_s={**record.timings_s, **_wait_and_run(record)},
        )
    if record.state == JobState.QUEUED or record.state == JobState.RUNNING:
        return record.with_state(
            JobState.RUNNING,
            f"attempt {record.attempts + 1}",
            attempts=record.attempts + 1,
            started_at=record.started_at or utc_now(),
            stage=None,
            percent=0.0,
        )
    return record


def _wait_and_run(record: JobRecord) -> dict[str, float]:
    """Seconds queued before the first start, and from the first start until now."""
    timings: dict[str, float] = {}
    if record.started_at is not None:
        timings["queued"] = _seconds(record.created_at, record.started_at)
        timings["total"] = _seconds(record.started_at, utc_now())
    return timings


def _seconds(start: datetime, end: datetime) -> float:
    return round((end - start).total_seconds(), 3)


def analysis_options(options: dict[str, Any], settings: Settings) -> AnalysisOptions:
    """A job's stored options, with the worker's segmenter when the job leaves it to "auto"."""
    segmenter: SegmenterChoice = options.get("segmenter") or "auto"
    return AnalysisOptions(
        height_cm=options.get("height_cm"),
        weight_kg=options.get("weight_kg"),
        sex=options.get("sex"),
        device=settings.device,
        segmenter=settings.segmenter if segmenter == "auto" else segmenter,
    )


def _discard_outputs(record: JobRecord) -> None:
    """Remove what an attempt wrote in the job's output folder (the folder stays)."""
    output_dir = job_folders(record).get("output")
    if output_dir is None or not output_dir.is_dir():
        return
    for path in output_dir.iterdir():
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def read_outputs_written(output_dir: Path) -> OutputsWritten | None:
    marker = output_dir / COMPLETION_MARKER
    try:
        outputs_written = OutputsWritten.model_validate_json(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not all(Path(p).is_file() for p in outputs_written.files.values()):
        return None
    return outputs_written


def write_outputs_written(output_dir: Path, outputs_written: OutputsWritten) -> None:
    """Written last and atomically, so its presence means every output is in place."""
    marker = output_dir / COMPLETION_MARKER
    partial = marker.with_suffix(".partial")
    partial.write_text(json.dumps(outputs_written.model_dump(), indent=1), encoding="utf-8")
    os.replace(partial, marker)
