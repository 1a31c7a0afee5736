"""The spool: instances received and not yet submitted, and the batches being submitted.

Layout under the spool root::

    tmp/                                        partial writes, renamed when complete
    received/<study>/<series>/<sop>.dcm         arrived since the study's last batch
    received/<study>/origin.json                who sent them (AE titles, host)
    batches/<study>/<batch>/<series>/<sop>.dcm  what one submission is given
    batches/<study>/<batch>.json                that submission's state and job ids

An instance is written to ``tmp/`` and renamed over its final name (``os.replace``), so a
reader sees either no file or a complete one, and an instance sent twice before its study
goes quiet keeps its newest copy (same SOP Instance UID, same name). When the study goes
quiet its files are *moved* into a new batch: instances that arrive later, re-sent ones
included, wait in ``received/`` for the next batch and never change a batch being read.
Submission gives each job its own links to the files and makes a re-sent series a new job
version (``service.submission``), so a batch is removed once submitted.

A refused batch (too few slices, say) keeps its files: the study's next batch takes them in,
so a series sent in parts with a pause between them is analysed whole. The refused batch's
record then says ``merged`` and names that batch, whose record names it in turn. Files of a
refused batch that nothing took in are removed after a while (``drop_files``); every record
stays. Whatever is left in ``received/`` or in a pending batch after a crash is picked up at
the next start; refused batches wait there for more of their study.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from habitus.errors import InputRefused
from habitus.jobs import Origin, OriginKind

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
BatchState = Literal["pending", "submitted", "refused", "merged"]


def check_uid(value: str, name: str) -> str:
    """A UID safe to use as a path component; raises InputRefused otherwise."""
    value = value.strip().rstrip("\x00")
    if not value or len(value) > 64 or _UID.fullmatch(value) is None:
        raise InputRefused(
            f"{name} must be a DICOM UID (digits and dots, at most 64 characters); found {value!r}"
        )
    return value


@dataclass(frozen=True)
class SeriesKey:
    study_instance_uid: str
    series_instance_uid: str


class BatchRecord(BaseModel):
    """What became of one batch: written beside it as ``<batch>.json``."""

    study_instance_uid: str
    batch_id: str
    series_instance_uids: list[str]
    instances: int
    origin: Origin
    created_at: datetime
    state: BatchState = "pending"
    job_ids: list[str] = Field(default_factory=list)
    error: str | None = None
    submitted_at: datetime | None = None
    refused_at: datetime | None = None
    files_removed_at: datetime | None = None  # a refused batch's files, kept for a while
    merged_from: list[str] = Field(default_factory=list)  # refused batches taken in
    merged_into: str | None = None  # state "merged": the batch that took the files


@dataclass(frozen=True)
class Batch:
    directory: Path  # batches/<study>/<batch>
    record: BatchRecord

    @property
    def record_path(self) -> Path:
        return self.directory.with_name(self.directory.name + ".json")


class Spool:
    def __init__(self, root: Path, fsync: bool = True) -> None:
        self.root = root
        self.fsync = fsync
        self._counter = itertools.count()  # unique temporary names without asking for entropy
        self._unsynced_dirs: set[Path] = set()  # hold a directory created, not yet synced
        self._unsynced_lock = threading.Lock()
        self.tmp_dir = root / "tmp"
        self.received_dir = root / "received"
        self.batches_dir = root / "batches"
        for d in (self.tmp_dir, self.received_dir, self.batches_dir):
            d.mkdir(parents=True, exist_ok=True)

    # writing one instance
    def write_temp(self, chunks: Sequence[bytes | memoryview]) -> Path:
        """Write an instance's bytes to a new temporary file in the spool and return it.

        With ``fsync`` the data is on disk when this returns (``fdatasync``: the size is
        flushed with it, access times need not be).
        """
        tmp = self.tmp_dir / f"{os.getpid()}-{threading.get_ident()}-{next(self._counter)}.part"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            views = [memoryview(c).cast("B") for c in chunks]
            while views:  # writev may stop short; go on from where it stopped
                written = os.writev(fd, views)
                while views and written >= len(views[0]):
                    written -= len(views[0])
                    views.pop(0)
                if views:
                    views[0] = views[0][written:]
            if self.fsync:
                os.fdatasync(fd)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        return tmp

    def instance_path(self, key: SeriesKey, sop_instance_uid: str) -> Path:
        return self.series_dir(key) / f"{sop_instance_uid}.dcm"

    def series_dir(self, key: SeriesKey) -> Path:
        return self.received_dir / key.study_instance_uid / key.series_instance_uid

    def commit(self, tmp: Path, key: SeriesKey, sop_instance_uid: str) -> Path:
        """Move a complete temporary file to its final name, replacing an earlier copy.

        ``sync_names`` then makes the new name durable; it is a separate step so that the
        completion tracker's lock, held around this one, is not held through an fsync.
        """
        final = self.instance_path(key, sop_instance_uid)
        try:
            os.replace(tmp, final)
        except FileNotFoundError:  # first instance of the series (or its batch just left)
            created = [d for d in (final.parent.parent, final.parent) if not d.is_dir()]
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
            with self._unsynced_lock:
                self._unsynced_dirs.update(d.parent for d in created)
        return final

    def sync_names(self, final: Path) -> None:
        """With ``fsync``: make a committed instance's name durable, so that an instance
        acknowledged is still in ``received/`` after a crash, not in ``tmp/``.

        Syncs the directory holding it and any holding a directory created since.
        """
        if not self.fsync:
            return
        with contextlib.suppress(FileNotFoundError):  # batched meanwhile: it has moved on
            _sync_directory(final.parent)
        if self._unsynced_dirs:
            with self._unsynced_lock:  # held through the fsync: rare, once per new series
                for directory in self._unsynced_dirs:
                    with contextlib.suppress(FileNotFoundError):
                        _sync_directory(directory)
                self._unsynced_dirs.clear()

    def save_origin(self, study_instance_uid: str, origin: Origin) -> None:
        """Remember who sent a study's waiting instances, for a restarted listener."""
        path = self._origin_path(study_instance_uid)
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_json(path, origin.model_dump(mode="json"))

    def load_origin(self, study_instance_uid: str) -> Origin:
        try:
            return Origin.model_validate_json(self._origin_path(study_instance_uid).read_bytes())
        except (OSError, ValueError):
            return Origin(kind=OriginKind.DICOM)

    def _origin_path(self, study_instance_uid: str) -> Path:
        return self.received_dir / study_instance_uid / "origin.json"

    def discard(self, tmp: Path) -> None:
        tmp.unlink(missing_ok=True)

    def clear_tmp(self) -> None:
        """Remove partial writes left by a process that stopped mid-write."""
        for part in self.tmp_dir.glob("*.part"):
            part.unlink(missing_ok=True)

    # batches
    def take_batch(
        self,
        study_instance_uid: str,
        series_instance_uids: list[str],
        origin: Origin,
        refused: Sequence[Batch] = (),
    ) -> Batch:
        """Move the series' received files into a new batch and record it as pending.

        The new batch also takes the files of ``refused`` batches of the same study (oldest
        first): of two copies of an instance the later one stays, a received one over all.
        Their records then say ``merged`` into the new batch, and their directories go.
        """
        now = datetime.now(UTC)
        batch_id = f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"
        directory = self.batches_dir / study_instance_uid / batch_id
        record = BatchRecord(
            study_instance_uid=study_instance_uid,
            batch_id=batch_id,
            series_instance_uids=sorted(series_instance_uids),
            instances=0,
            origin=origin,
            created_at=now,
            merged_from=[earlier.record.batch_id for earlier in refused],
        )
        # recorded before any file moves: after a crash part-way, recovery submits what
        # reached the batch, and what did not is still in received/ or its refused batch
        directory.mkdir(parents=True)
        self.save_batch(Batch(directory, record))
        for earlier in refused:
            _move_instances(earlier.directory.glob("*/*.dcm"), directory)
        for series in sorted(series_instance_uids):
            source = self.series_dir(SeriesKey(study_instance_uid, series))
            (directory / series).mkdir(parents=True, exist_ok=True)
            _move_instances(sorted(source.glob("*.dcm")), directory)
            _remove_empty(source)
        self._origin_path(study_instance_uid).unlink(missing_ok=True)
        _remove_empty(self.received_dir / study_instance_uid)
        record = record.model_copy(
            update={
                "series_instance_uids": sorted(p.name for p in directory.iterdir() if p.is_dir()),
                "instances": sum(1 for _ in directory.glob("*/*.dcm")),
            }
        )
        batch = Batch(directory, record)
        self.save_batch(batch)
        for earlier in refused:
            merged = earlier.record.model_copy(update={"state": "merged", "merged_into": batch_id})
            self.save_batch(Batch(earlier.directory, merged))
            shutil.rmtree(earlier.directory, ignore_errors=True)
        return batch

    def save_batch(self, batch: Batch) -> None:
        _write_json(batch.record_path, batch.record.model_dump(mode="json"))

    def pending_batches(self) -> list[Batch]:
        """Batches recorded but not yet submitted (oldest first): to resubmit after restart."""
        return self._batches_in_state("pending")

    def refused_batches(self) -> list[Batch]:
        """Refused batches whose files are still kept (oldest first)."""
        return [b for b in self._batches_in_state("refused") if b.directory.is_dir()]

    def _batches_in_state(self, state: BatchState) -> list[Batch]:
        found = []
        for record_path in sorted(self.batches_dir.glob("*/*.json")):
            record = BatchRecord.model_validate_json(record_path.read_bytes())
            if record.state == state:
                found.append(Batch(record_path.with_suffix(""), record))
        return sorted(found, key=lambda b: b.record.created_at)

    def finish_batch(self, batch: Batch) -> None:
        """Keep the batch's record (state, job ids, error); remove its files unless it was
        refused (those wait for more of the study, or for ``drop_files``)."""
        self.save_batch(batch)
        if batch.record.state != "refused":
            shutil.rmtree(batch.directory, ignore_errors=True)

    def drop_files(self, batch: Batch) -> Batch:
        """Remove a refused batch's files; its record stays and says when they went."""
        record = batch.record.model_copy(update={"files_removed_at": datetime.now(UTC)})
        dropped = Batch(batch.directory, record)
        self.save_batch(dropped)
        shutil.rmtree(batch.directory, ignore_errors=True)
        return dropped

    # recovery
    def waiting_series(self) -> Iterator[SeriesKey]:
        """Series with received instances not yet in a batch."""
        for study in sorted(p for p in self.received_dir.iterdir() if p.is_dir()):
            for series in sorted(p for p in study.iterdir() if p.is_dir()):
                if any(series.glob("*.dcm")):
                    yield SeriesKey(study.name, series.name)


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _move_instances(files: Iterable[Path], directory: Path) -> None:
    """Move ``<series>/<sop>.dcm`` files under ``directory``, replacing copies there."""
    for src in files:
        target = directory / src.parent.name
        target.mkdir(parents=True, exist_ok=True)
        os.replace(src, target / src.name)


def _remove_empty(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not empty (an instance arrived meanwhile) or gone
        directory.rmdir()


def _write_json(path: Path, content: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(content, sort_keys=True))
    os.replace(tmp, path)
