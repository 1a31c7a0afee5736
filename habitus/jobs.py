"""The job contract shared by the service and the worker through Redis.

A job analyses one CT series. The service creates it (REST upload or DICOM listener), the
worker runs it and delivers its results to PACS nodes; both read and change the record here,
and neither imports the other. Records are JSON under ``<prefix>job:<id>`` (the key names are
in ``habitus.redis_keys``, under ``HABITUS_REDIS_PREFIX``); every change goes through an
optimistic WATCH/MULTI transaction, so concurrent workers never lose an update.

Celery messages carry ids only; the task names and queues are constants below so producers
send them by name:

- ``ANALYZE_TASK(job_id: str)`` on ``ANALYZE_QUEUE``: run the analysis of one job;
- ``DELIVER_TASK(job_id: str, node: str)`` on ``DELIVER_QUEUE``: send a succeeded job's
  results to one PACS node (a ``DicomNode`` name). Submission creates a pending
  ``DeliveryRecord`` per destination; the analysis, once succeeded, sets its
  ``dispatched_at`` and sends one task per destination (never twice for one record).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import redis
from pydantic import BaseModel, Field, model_validator

from habitus.config import redis_keys
from habitus.errors import HabitusError
from habitus.nodes import DicomNode
from habitus.redis_keys import RedisKeys

ANALYZE_TASK = "habitus.analyze"
DELIVER_TASK = "habitus.deliver"
ANALYZE_QUEUE = "habitus.analyze"
DELIVER_QUEUE = "habitus.deliver"

STAGE_SECONDS_BUCKETS: tuple[float, ...] = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
"""Upper bounds (s) of the stage-duration histogram exported by the API."""

MAX_HISTORY = 50  # transitions kept per job; enough to audit redeliveries
MAX_PAGE = 1000  # jobs in one page of a listing
PAGE_SCAN_BUDGET = 5000  # index entries one page examines at most (a state filter skips some)
_SCAN_BATCH = 1000  # most index entries read in one round trip


class JobNotFoundError(HabitusError):
    """No job has the given id."""


class JobConflictError(HabitusError):
    """The job is not in a state that allows the requested change."""


class JobCursorError(HabitusError):
    """A listing's cursor is not one that a listing returned."""


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})

ALLOWED_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.FAILED, JobState.CANCELLED}),
    # running -> running: a task redelivered after its worker died starts the job again
    JobState.RUNNING: frozenset(
        {JobState.RUNNING, JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}
    ),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
}


class OriginKind(StrEnum):
    REST = "rest"
    DICOM = "dicom"


class Origin(BaseModel):
    """Where a job's instances came from."""

    kind: OriginKind
    calling_ae_title: str | None = None  # DICOM: the AE title that sent the study
    called_ae_title: str | None = None  # DICOM: the AE title it addressed (ours)
    peer_host: str | None = None  # DICOM peer address or REST client address
    client: str | None = None  # REST: the API key's name, never the key itself


ANONYMOUS_OWNER = "anonymous"  # REST jobs of a service run without API keys
NODE_OWNER_PREFIX = "node:"  # PACS-routed jobs belong to the sending node's AE title


def owner_of(origin: Origin) -> str:
    """Who a job belongs to: the API key's name, or ``node:<calling AE title>`` for PACS."""
    if origin.kind == OriginKind.DICOM:
        return NODE_OWNER_PREFIX + (origin.calling_ae_title or "").strip()
    return origin.client or ANONYMOUS_OWNER


def default_destinations(origin: Origin, nodes: Iterable[DicomNode]) -> list[str]:
    """The node that sent a study over DICOM gets the results back, if it is a known node."""
    if origin.kind != OriginKind.DICOM or not origin.calling_ae_title:
        return []
    calling = origin.calling_ae_title.strip()
    return [n.name for n in nodes if n.ae_title.strip() == calling][:1]


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # the job ended without results (failed or cancelled): nothing to send


class DeliveryRecord(BaseModel):
    """Sending a job's results to one PACS node."""

    state: DeliveryState = DeliveryState.PENDING
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    delivered_sop_instance_uids: list[str] = Field(default_factory=list)
    dispatched_at: datetime | None = None  # when the analysis queued its DELIVER_TASK
    updated_at: datetime | None = None


class JobEvent(BaseModel):
    """One state transition, kept for auditing retries and redeliveries."""

    at: datetime
    state: JobState
    note: str = ""


def utc_now() -> datetime:
    return datetime.now(UTC)


JOB_ID = re.compile(r"[0-9a-f]{32}")
"""Job ids are 32 lower-case hexadecimal digits (a UUID4): nothing else names a key."""


def new_job_id() -> str:
    return uuid.uuid4().hex


def _checked(job_id: str) -> str:
    """``job_id`` when it has the form of one; a caller's "<id>:lease" must not name a key."""
    if not JOB_ID.fullmatch(job_id):
        raise JobNotFoundError(f"no job with id {job_id[:64]!r}: job ids are 32 hexadecimal digits")
    return job_id


class JobRecord(BaseModel):
    id: str = Field(default_factory=new_job_id)
    version: int = 1  # 2, 3...: instances of the same series received again
    supersedes: str | None = None  # id of the previous version of this series' job
    state: JobState = JobState.QUEUED
    stage: str | None = None  # a habitus.progress.Stage value while running
    percent: float = 0.0
    created_at: datetime = Field(default_factory=utc_now)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0  # how many times a worker started the analysis
    timings_s: dict[str, float] = Field(default_factory=dict)  # seconds per stage
    warnings: list[str] = Field(default_factory=list)
    error: str | None = None
    cancel_requested: bool = False
    cancel_reason: str | None = None  # why, when not the client's request (the job's error)
    input_dir: str  # directory holding the job's DICOM instances
    output_dir: str  # directory where the worker writes seg.dcm, sr.dcm, report.json...
    instances: int = 0
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    # PET series of the study carried in the input beside the CT, for uptake per tissue
    pet_series_instance_uids: list[str] = Field(default_factory=list)
    origin: Origin
    owner: str = ""  # owner_of(origin) when not given (and for records stored before owners)
    options: dict[str, Any] = Field(default_factory=dict)  # AnalysisOptions fields
    destinations: list[str] = Field(default_factory=list)  # PACS node names
    deliveries: dict[str, DeliveryRecord] = Field(default_factory=dict)
    result_files: dict[str, str] = Field(default_factory=dict)  # kind -> path
    history: list[JobEvent] = Field(default_factory=list)

    @model_validator(mode="after")
    def _owned(self) -> JobRecord:
        if not self.owner:
            self.owner = owner_of(self.origin)
        return self

    def with_state(self, state: JobState, note: str = "", **changes: Any) -> JobRecord:
        """A copy in ``state``; raises JobConflictError if the state machine does not allow it."""
        if state not in ALLOWED_TRANSITIONS[self.state]:
            raise JobConflictError(
                f"job {self.id} cannot go from {self.state.value} to {state.value}"
            )
        now = utc_now()
        history = [*self.history, JobEvent(at=now, state=state, note=note)][-MAX_HISTORY:]
        updated = self.model_copy(update={**changes, "state": state, "history": history})
        if state.is_terminal and updated.finished_at is None:
            updated = updated.model_copy(update={"finished_at": now})
        if state in (JobState.FAILED, JobState.CANCELLED):
            updated = updated.model_copy(update={"deliveries": _skipped(updated, now)})
        return updated


def _skipped(record: JobRecord, now: datetime) -> dict[str, DeliveryRecord]:
    """The deliveries of a job that ends without results: those still waiting say so."""
    reason = f"nothing sent: the job {record.state.value} without results"
    return {
        node: delivery.model_copy(
            update={"state": DeliveryState.SKIPPED, "last_error": reason, "updated_at": now}
        )
        if delivery.state == DeliveryState.PENDING and delivery.dispatched_at is None
        else delivery
        for node, delivery in record.deliveries.items()
    }


JobChange = Callable[[JobRecord], JobRecord]
IndexEntries = list[tuple[str, float]]  # (job id, creation time) of an index's entries
DeliveryChange = Callable[[DeliveryRecord], DeliveryRecord]


@dataclass(frozen=True)
class Precondition:
    """A condition on other Redis keys that a job write must meet when it commits.

    ``keys`` are watched together with the record, so a change to any of them before the
    write commits makes it start over; ``check`` gets their values as read inside the
    transaction and raises to refuse the write (the record stays unchanged).
    """

    keys: tuple[str, ...]
    check: Callable[[Mapping[str, bytes | str | None]], None]


class JobStore:
    """Jobs in Redis; every write is an atomic read-modify-write (WATCH/MULTI, retried).

    Its keys start with ``prefix``: ``HABITUS_REDIS_PREFIX`` unless given.
    """

    def __init__(self, client: redis.Redis, prefix: str | None = None, max_retries: int = 50):
        self.redis = client
        self.keys: RedisKeys = RedisKeys(prefix) if prefix is not None else redis_keys()
        self.max_retries = max_retries

    # keys
    def job_key(self, job_id: str) -> str:
        return self.keys.job(job_id)

    @property
    def index_key(self) -> str:
        return self.keys.jobs

    def owner_key(self, owner: str) -> str:
        return self.keys.jobs_of_owner(owner)

    def state_key(self, state: JobState) -> str:
        return self.keys.jobs_in_state(state.value)

    def series_key(self, series_instance_uid: str) -> str:
        return self.keys.series(series_instance_uid)

    def study_key(self, study_instance_uid: str) -> str:
        return self.keys.study(study_instance_uid)

    # reads
    def get(self, job_id: str) -> JobRecord:
        raw = self.redis.get(self.job_key(_checked(job_id)))
        if raw is None:
            raise JobNotFoundError(f"no job with id {job_id!r}")
        return JobRecord.model_validate_json(raw)

    def list(
        self, state: JobState | None = None, limit: int = 100, owner: str | None = None
    ) -> list[JobRecord]:
        """The newest jobs, optionally only those in ``state`` or of ``owner``."""
        return self.page(state=state, owner=owner, limit=limit).jobs

    def page(
        self,
        *,
        state: JobState | None = None,
        owner: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> JobPage:
        """One page of jobs, newest first, from ``cursor`` (a previous page's ``next_cursor``).

        Reads the creation-time index from the cursor on, never the whole index: a page
        examines at most ``PAGE_SCAN_BUDGET`` entries, so a rare ``state`` may give a short
        (even empty) page whose ``next_cursor`` goes on from where it stopped.
        """
        limit = max(1, min(limit, MAX_PAGE))
        key = self.owner_key(owner) if owner is not None else self.index_key
        chosen: list[str] = []
        position: tuple[float, str] | None = None  # the last index entry examined
        examined = 0
        more = False  # an entry beyond ``position`` exists
        for batch in self._newest_first(key, cursor, first_batch=limit + 1):
            wanted = self._in_state(state, [member for member, _ in batch])
            for (member, score), keep in zip(batch, wanted, strict=True):
                if len(chosen) == limit or examined == PAGE_SCAN_BUDGET:
                    more = True
                    break
                examined += 1
                position = (score, member)
                if keep:
                    chosen.append(member)
            if more:
                break
        next_cursor = _cursor(*position) if more and position is not None else None
        raws = self.redis.mget([self.job_key(i) for i in chosen]) if chosen else []
        jobs = [JobRecord.model_validate_json(r) for r in raws if r is not None]
        return JobPage(jobs=jobs, next_cursor=next_cursor)

    def _newest_first(
        self, key: str, cursor: str | None, first_batch: int
    ) -> Iterator[IndexEntries]:
        """The entries of a creation-time index after ``cursor``, newest first, in batches
        that start at ``first_batch`` (what an unfiltered page needs) and double."""
        top, seen = "+inf", None
        if cursor is not None:
            seen = _parse_cursor(cursor)
            top = repr(seen[0])
        offset, size = 0, min(first_batch, _SCAN_BATCH)
        while True:
            rows: Sequence[Any] = self.redis.zrange(
                key, top, "-inf", desc=True, byscore=True, offset=offset, num=size,
                withscores=True,
            )  # fmt: skip
            offset += len(rows)
            # entries of the cursor's own score come in reverse order of id: those >= it were seen
            entries = [
                (_text(m), float(score))
                for m, score in rows
                if seen is None or float(score) != seen[0] or _text(m) < seen[1]
            ]
            if entries:
                yield entries
            if len(rows) < size:
                return
            size = min(2 * size, _SCAN_BATCH)

    def _in_state(self, state: JobState | None, ids: Sequence[str]) -> tuple[bool, ...]:
        if state is None or not ids:
            return (True,) * len(ids)
        return tuple(bool(f) for f in self.redis.smismember(self.state_key(state), list(ids)))

    @property
    def owners_indexed_key(self) -> str:
        return self.keys.owners_indexed

    def index_owners(self) -> int:
        """Put the jobs stored before jobs had owners in their owner's index, once per store;
        returns how many jobs it indexed. New jobs are indexed by ``create``."""
        if self.redis.exists(self.owners_indexed_key):
            return 0
        indexed = 0
        for start in range(0, int(self.redis.zcard(self.index_key)), _SCAN_BATCH):
            rows: Sequence[Any] = self.redis.zrange(
                self.index_key, start, start + _SCAN_BATCH - 1, withscores=True
            )
            raws = self.redis.mget([self.job_key(_text(m)) for m, _ in rows]) if rows else []
            with self.redis.pipeline(transaction=False) as pipe:
                for (member, score), raw in zip(rows, raws, strict=True):
                    try:
                        owner = JobRecord.model_validate_json(raw).owner if raw else None
                    except ValueError:  # a damaged record: listed by no owner
                        owner = None
                    if owner is not None:
                        pipe.zadd(self.owner_key(owner), {_text(member): float(score)})
                        indexed += 1
                pipe.execute()
        self.redis.set(self.owners_indexed_key, indexed)
        return indexed

    def created_before(self, cutoff: datetime, limit: int, offset: int = 0) -> tuple[str, ...]:
        """Ids of jobs created before ``cutoff``, oldest first (``limit`` from ``offset``)."""
        rows = self.redis.zrange(
            self.index_key, "-inf", f"({cutoff.timestamp()!r}", byscore=True, offset=offset,
            num=limit,
        )  # fmt: skip
        return tuple(_text(r) for r in rows)

    def ids_in_state(self, state: JobState) -> set[str]:
        return {_text(i) for i in self.redis.smembers(self.state_key(state))}

    def count_by_state(self) -> dict[JobState, int]:
        return {s: int(self.redis.scard(self.state_key(s))) for s in JobState}

    def series_of_study(self, study_instance_uid: str) -> set[str]:
        """Series UIDs of the study that have had a job (latest_for_series finds it)."""
        return {_text(s) for s in self.redis.smembers(self.study_key(study_instance_uid))}

    def latest_for_series(self, series_instance_uid: str) -> JobRecord | None:
        job_id = self.redis.get(self.series_key(series_instance_uid))
        if job_id is None:
            return None
        try:
            return self.get(_text(job_id))
        except JobNotFoundError:
            return None

    # writes
    def create(self, record: JobRecord, latest_of_series: bool = True) -> JobRecord:
        """Store a new job; it becomes the latest job of its series (``latest_for_series``,
        ``series_of_study``) unless ``latest_of_series`` is false: a job that stands alone."""
        record = record.model_copy(
            update={"history": [JobEvent(at=record.created_at, state=record.state)]}
        )
        if not self.redis.set(self.job_key(record.id), record.model_dump_json(), nx=True):
            raise JobConflictError(f"a job with id {record.id!r} already exists")
        created = record.created_at.timestamp()
        with self.redis.pipeline() as pipe:
            pipe.zadd(self.index_key, {record.id: created})
            pipe.zadd(self.owner_key(record.owner), {record.id: created})
            pipe.sadd(self.state_key(record.state), record.id)
            if record.series_instance_uid and latest_of_series:
                pipe.set(self.series_key(record.series_instance_uid), record.id)
                if record.study_instance_uid:
                    pipe.sadd(self.study_key(record.study_instance_uid), record.series_instance_uid)
            pipe.execute()
        return record

    def update(
        self, job_id: str, change: JobChange, *, precondition: Precondition | None = None
    ) -> JobRecord:
        """Apply ``change`` to the stored record atomically and return the new record.

        ``change`` may run more than once (when another writer got there first), so it must
        be a pure function of the record it is given. Exceptions it raises propagate and
        leave the record unchanged. A ``precondition`` is checked in the same transaction.
        """
        key = self.job_key(_checked(job_id))
        watched = precondition.keys if precondition else ()
        for _ in range(self.max_retries):
            with self.redis.pipeline() as pipe:
                try:
                    pipe.watch(key, *watched)
                    if precondition:
                        precondition.check(dict(zip(watched, pipe.mget(watched), strict=True)))
                    raw = pipe.get(key)
                    if raw is None:
                        raise JobNotFoundError(f"no job with id {job_id!r}")
                    before = JobRecord.model_validate_json(raw)
                    after = change(before)
                    pipe.multi()
                    pipe.set(key, after.model_dump_json())
                    if after.state != before.state:
                        pipe.srem(self.state_key(before.state), job_id)
                        pipe.sadd(self.state_key(after.state), job_id)
                    pipe.execute()
                    return after
                except redis.WatchError:
                    continue
        raise JobConflictError(
            f"job {job_id} changed concurrently {self.max_retries} times in a row; gave up"
        )

    def transition(
        self,
        job_id: str,
        state: JobState,
        *,
        expected: Collection[JobState] | None = None,
        note: str = "",
        **changes: Any,
    ) -> JobRecord:
        """Move a job to ``state`` (with field ``changes``) if it is in one of ``expected``."""

        def change(record: JobRecord) -> JobRecord:
            if expected is not None and record.state not in expected:
                allowed = ", ".join(sorted(s.value for s in expected))
                raise JobConflictError(
                    f"job {job_id} is {record.state.value}; expected one of: {allowed}"
                )
            return record.with_state(state, note, **changes)

        return self.update(job_id, change)

    def update_delivery(
        self,
        job_id: str,
        node: str,
        change: DeliveryChange,
        *,
        precondition: Precondition | None = None,
    ) -> JobRecord:
        """Change the delivery record of one destination node atomically."""

        def apply(record: JobRecord) -> JobRecord:
            current = record.deliveries.get(node, DeliveryRecord())
            updated = change(current).model_copy(update={"updated_at": utc_now()})
            return record.model_copy(update={"deliveries": {**record.deliveries, node: updated}})

        return self.update(job_id, apply, precondition=precondition)

    def delete(self, job_id: str) -> JobRecord:
        """Forget a job (its files are the caller's to remove); returns the last record."""
        record = self.get(job_id)
        with self.redis.pipeline() as pipe:
            pipe.delete(self.job_key(job_id))
            pipe.zrem(self.index_key, job_id)
            pipe.zrem(self.owner_key(record.owner), job_id)
            for s in JobState:
                pipe.srem(self.state_key(s), job_id)
            pipe.execute()
        if record.series_instance_uid:
            # only if it still points here: a newer version keeps its pointer
            self._delete_if_equal(self.series_key(record.series_instance_uid), job_id)
        return record

    def _delete_if_equal(self, key: str, value: str) -> None:
        with self.redis.pipeline() as pipe:
            try:
                pipe.watch(key)
                if _text(pipe.get(key) or b"") == value:
                    pipe.multi()
                    pipe.delete(key)
                    pipe.execute()
            except redis.WatchError:
                pass  # someone replaced the pointer meanwhile: leave theirs

    # metrics shared by the listener, the worker and the API
    def increment_instances_received(self, count: int = 1) -> int:
        """Count DICOM instances the listener received; the API exports it as a metric."""
        return int(self.redis.incrby(self.keys.instances_received, count))

    def instances_received(self) -> int:
        return int(self.redis.get(self.keys.instances_received) or 0)

    def stage_seconds_key(self, stage: str) -> str:
        return self.keys.stage_seconds(stage)

    @property
    def stage_seconds_stages_key(self) -> str:
        return self.keys.stage_seconds_stages

    def observe_stage_seconds(self, stage: str, seconds: float) -> None:
        """Add one stage duration to the histogram (cumulative bucket counts in a hash)."""
        key = self.stage_seconds_key(stage)
        with self.redis.pipeline() as pipe:
            pipe.sadd(self.stage_seconds_stages_key, stage)
            for bound in STAGE_SECONDS_BUCKETS:
                if seconds <= bound:
                    pipe.hincrby(key, _bucket_field(bound), 1)
            pipe.hincrby(key, "+Inf", 1)
            pipe.hincrbyfloat(key, "sum", seconds)
            pipe.execute()

    def stage_seconds(self) -> dict[str, StageHistogram]:
        """The stage-duration histograms: stage -> cumulative counts per bucket, sum."""
        stages = sorted(_text(s) for s in self.redis.smembers(self.stage_seconds_stages_key))
        result: dict[str, StageHistogram] = {}
        for stage in stages:
            raw = {
                _text(k): _text(v)
                for k, v in self.redis.hgetall(self.stage_seconds_key(stage)).items()
            }
            buckets = [(b, int(raw.get(_bucket_field(b), 0))) for b in STAGE_SECONDS_BUCKETS]
            result[stage] = StageHistogram(
                buckets=buckets, count=int(raw.get("+Inf", 0)), sum=float(raw.get("sum", 0.0))
            )
        return result


class JobPage(BaseModel):
    jobs: list[JobRecord]
    next_cursor: str | None  # None: the listing has no more jobs


_CURSOR = re.compile(r"(\d{1,12}(?:\.\d{1,9})?)-([0-9a-f]{32})")


def _cursor(score: float, job_id: str) -> str:
    return f"{score!r}-{job_id}"


def _parse_cursor(cursor: str) -> tuple[float, str]:
    """The index entry (score, id) that a page ended on."""
    found = _CURSOR.fullmatch(cursor)
    if found is None:
        raise JobCursorError(
            f"expected a cursor of the form a listing returns as next_cursor; got {cursor[:80]!r}"
        )
    return float(found.group(1)), found.group(2)


class StageHistogram(BaseModel):
    buckets: list[tuple[float, int]]  # (upper bound s, cumulative count)
    count: int
    sum: float


def _bucket_field(bound: float) -> str:
    return f"le:{bound:g}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


ResultKind = Literal["seg", "sr", "report", "preview"]
RESULT_MEDIA_TYPES: dict[str, str] = {
    "seg": "application/dicom",
    "sr": "application/dicom",
    "report": "application/json",
    "preview": "image/png",
}


def job_folders(record: JobRecord) -> dict[str, Path]:
    """The record's input and output folders, where they have the form the service gives them.

    The service names them ``<jobs>/<id>/input`` and ``<jobs>/<id>/output``. What deletes
    them (the API, retention, a failed attempt) takes only folders of that form, so that a
    record forged in Redis cannot name other folders to delete.
    """
    folders: dict[str, Path] = {}
    for name, value in (("input", record.input_dir), ("output", record.output_dir)):
        folder = Path(value)
        if value and folder.is_absolute() and folder.name == name and ".." not in folder.parts:
            folders[name] = folder
    return folders
