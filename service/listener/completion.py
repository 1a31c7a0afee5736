"""When a study has arrived: a quiet period without instances, then one submission.

Association threads only record arrivals (``commit``); a single background thread notices
studies that have gone quiet, moves their new instances into a batch and submits it. The
spool keeps enough on disk (instances not yet batched, pending batches) for a restarted
listener to finish what a stopped one left.

A refused batch keeps its instances for ``keep_refused_s``: when more of its study arrives
and goes quiet, the new batch takes them in (a series sent in two parts is analysed whole);
otherwise the same thread removes them once that time has passed. A refused batch is never
submitted again on its own, not even after a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from habitus.errors import HabitusError
from habitus.jobs import Origin, OriginKind
from service.listener.spool import Batch, SeriesKey, Spool

log = logging.getLogger(__name__)

T = TypeVar("T")

SubmitStudy = Callable[[Path, Origin], list[str]]
"""Queues jobs for the series of a study directory; returns the job ids."""

CountInstances = Callable[[int], object]
"""Adds to the shared counter of received instances."""


@dataclass
class _ArrivingStudy:
    series: set[str] = field(default_factory=set)
    last_arrival: float = 0.0
    origin: Origin = field(default_factory=lambda: Origin(kind=OriginKind.DICOM))
    open_associations: set[int] = field(default_factory=set)  # still connected senders

    def is_quiet(self, now: float, quiet_period_s: float, quiet_after_release_s: float) -> bool:
        idle = now - self.last_arrival
        if self.open_associations:
            return idle >= quiet_period_s
        return idle >= min(quiet_period_s, quiet_after_release_s)


@dataclass
class _RetryingBatch:
    batch: Batch
    not_before: float


@dataclass
class _RefusedBatch:
    batch: Batch
    files_until: float  # clock time after which its files are removed


class CompletionTracker:
    def __init__(
        self,
        spool: Spool,
        submit: SubmitStudy,
        quiet_period_s: float,
        poll_interval_s: float = 0.25,
        submit_retry_s: float = 15.0,
        quiet_after_release_s: float | None = None,
        count_instances: CountInstances | None = None,
        clock: Callable[[], float] = time.monotonic,
        keep_refused_s: float = 86400.0,
    ) -> None:
        self.spool = spool
        self.submit = submit
        self.quiet_period_s = quiet_period_s
        self.quiet_after_release_s = (
            quiet_period_s if quiet_after_release_s is None else quiet_after_release_s
        )
        self.poll_interval_s = poll_interval_s
        self.submit_retry_s = submit_retry_s
        self.keep_refused_s = keep_refused_s
        self.count_instances = count_instances
        self.clock = clock
        self._lock = threading.Lock()
        self._arriving: dict[str, _ArrivingStudy] = {}
        self._retrying: list[_RetryingBatch] = []
        self._refused: list[_RefusedBatch] = []  # files kept, for the study's next batch
        self._uncounted = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # called from association threads
    def commit(
        self,
        tmp: Path,
        key: SeriesKey,
        sop_instance_uid: str,
        origin: Origin,
        association: int | None = None,
    ) -> Path:
        """Put a written instance in place and note its arrival, as one step.

        ``association`` identifies the sender's association until ``association_ended``.

        Done under the lock that batching takes, so the instance lands either in the batch
        being taken or in ``received/`` for the next one, never half in both.
        """
        with self._lock:
            path = self.spool.commit(tmp, key, sop_instance_uid)
            study = self._arriving.setdefault(key.study_instance_uid, _ArrivingStudy())
            study.series.add(key.series_instance_uid)
            study.last_arrival = self.clock()
            if association is not None:
                study.open_associations.add(association)
            if study.origin != origin:
                study.origin = origin
                self.spool.save_origin(key.study_instance_uid, origin)
            self._uncounted += 1
        return path

    def association_ended(self, association: int) -> None:
        """A sender's association closed (released, aborted or cut)."""
        with self._lock:
            for study in self._arriving.values():
                study.open_associations.discard(association)

    # the background thread
    def start(self) -> None:
        self.recover()
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name="habitus-listener-completion", daemon=True
        )
        self._thread.start()

    def stop(self, flush: bool = False) -> None:
        """Stop the thread; with ``flush``, submit whatever has arrived without waiting."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if flush:
            self.run_once(force=True)
        self._flush_count()

    def recover(self) -> None:
        """Pick up what a previous process left: unsubmitted batches, unbatched series, and
        refused batches still kept (not submitted: they wait for more of their study)."""
        self.spool.clear_tmp()
        now = self.clock()
        for batch in self.spool.pending_batches():
            self._retrying.append(_RetryingBatch(batch, now))
        wall_now = datetime.now(UTC)
        for batch in self.spool.refused_batches():
            refused_at = batch.record.refused_at or batch.record.created_at
            age_s = (wall_now - refused_at).total_seconds()
            self._refused.append(_RefusedBatch(batch, now + self.keep_refused_s - age_s))
        with self._lock:
            for key in self.spool.waiting_series():
                study = self._arriving.setdefault(
                    key.study_instance_uid,
                    _ArrivingStudy(origin=self.spool.load_origin(key.study_instance_uid)),
                )
                study.series.add(key.series_instance_uid)
                study.last_arrival = now  # give late instances a full quiet period
        if self._retrying or self._arriving or self._refused:
            log.info(
                "listener recovery: %d pending batches, %d studies with unbatched instances, "
                "%d refused batches kept",
                len(self._retrying),
                len(self._arriving),
                len(self._refused),
            )

    def _run(self) -> None:
        while not self._stop.wait(self.poll_interval_s):
            try:
                self.run_once()
            except Exception:  # keep the thread alive; the next round tries again
                log.exception("listener completion round failed")

    def run_once(self, force: bool = False) -> list[Batch]:
        """Batch and submit every quiet study (every study with ``force``); return the batches."""
        self._flush_count()
        now = self.clock()
        self._drop_expired_refused(now)
        batches: list[Batch] = []
        with self._lock:
            quiet = [
                uid
                for uid, study in self._arriving.items()
                if force or study.is_quiet(now, self.quiet_period_s, self.quiet_after_release_s)
            ]
            for uid in quiet:
                study = self._arriving.pop(uid)
                refused, self._refused = _split(self._refused, _of_study(uid))
                batch = self.spool.take_batch(
                    uid, sorted(study.series), study.origin, [r.batch for r in refused]
                )
                batches.append(batch)
        due, self._retrying = _split(self._retrying, lambda r: force or r.not_before <= now)
        for batch in [r.batch for r in due] + batches:
            self._submit(batch)
        return batches

    def pending(self) -> int:
        """Studies still arriving plus batches waiting for a retry."""
        with self._lock:
            return len(self._arriving) + len(self._retrying)

    def _drop_expired_refused(self, now: float) -> None:
        expired, self._refused = _split(self._refused, lambda r: r.files_until <= now)
        for refused in expired:
            record = self.spool.drop_files(refused.batch).record
            log.info(
                "study %s batch %s: refused instances removed after %.0f s",
                record.study_instance_uid,
                record.batch_id,
                self.keep_refused_s,
            )

    def _submit(self, batch: Batch) -> None:
        record = batch.record
        try:
            job_ids = self.submit(batch.directory, record.origin)
        except HabitusError as exc:
            # the input itself is refused: retrying the same files cannot help; keep them
            # (and the reason) for the study's next batch
            log.warning(
                "study %s batch %s refused (its %d instances are kept %.0f s for more of the "
                "study): %s",
                record.study_instance_uid,
                record.batch_id,
                record.instances,
                self.keep_refused_s,
                exc,
            )
            record = record.model_copy(
                update={"state": "refused", "error": str(exc), "refused_at": datetime.now(UTC)}
            )
        except Exception as exc:
            log.warning(
                "study %s batch %s not submitted (%s: %s); retrying in %.0f s",
                record.study_instance_uid,
                record.batch_id,
                type(exc).__name__,
                exc,
                self.submit_retry_s,
            )
            self._retrying.append(_RetryingBatch(batch, self.clock() + self.submit_retry_s))
            return
        else:
            log.info(
                "study %s batch %s (%d instances, %d series) queued as jobs %s",
                record.study_instance_uid,
                record.batch_id,
                record.instances,
                len(record.series_instance_uids),
                ",".join(job_ids),
            )
            record = record.model_copy(
                update={"state": "submitted", "job_ids": job_ids, "submitted_at": datetime.now(UTC)}
            )
        batch = Batch(batch.directory, record)
        self.spool.finish_batch(batch)
        if record.state == "refused":
            self._refused.append(_RefusedBatch(batch, self.clock() + self.keep_refused_s))

    def _flush_count(self) -> None:
        if self.count_instances is None:
            return
        with self._lock:
            count, self._uncounted = self._uncounted, 0
        if not count:
            return
        try:
            self.count_instances(count)
        except Exception as exc:  # Redis away: keep the count for the next round
            with self._lock:
                self._uncounted += count
            log.warning("instance counter not updated (%s); will retry", exc)


def _split(items: list[T], taken: Callable[[T], bool]) -> tuple[list[T], list[T]]:
    """(the items ``taken`` selects, the others), each in their order."""
    chosen = [item for item in items if taken(item)]
    return chosen, [item for item in items if not taken(item)]


def _of_study(study_instance_uid: str) -> Callable[[_RefusedBatch], bool]:
    return lambda refused: refused.batch.record.study_instance_uid == study_instance_uid
