"""Writes pipeline progress into the job record, throttled; notices cancellation requests."""

from __future__ import annotations

import time
from collections.abc import Callable

from habitus.jobs import JobChange, JobRecord
from habitus.progress import Stage, overall_percent

JobUpdate = Callable[[JobChange], JobRecord]
"""Applies a change to the job's record (``functools.partial(store.update, job_id)``, or the
fenced and outage-tolerant ``LeasedJob.update`` of a running attempt)."""


class JobCancelledError(Exception):
    """The job was cancelled while running; the analysis stops at the next progress step."""


class JobProgress:
    """A pipeline progress callback: one record write per interval, or at a new stage."""

    def __init__(
        self,
        update: JobUpdate,
        job_id: str,
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.update = update
        self.job_id = job_id
        self.interval_s = interval_s
        self.clock = clock
        self._last_write = float("-inf")
        self._last_stage: Stage | None = None
        self.writes = 0

    def __call__(self, stage: Stage, fraction: float) -> None:
        now = self.clock()
        if stage == self._last_stage and now - self._last_write < self.interval_s:
            return
        self._last_stage, self._last_write = stage, now
        percent = overall_percent(stage, fraction)

        def advance(record: JobRecord) -> JobRecord:
            # progress only moves forward, even if a stage reports a smaller fraction
            return record.model_copy(
                update={"stage": stage.value, "percent": max(record.percent, percent)}
            )

        record = self.update(advance)
        self.writes += 1
        if record.cancel_requested:
            raise JobCancelledError(f"job {self.job_id} was cancelled during {stage.value}")
