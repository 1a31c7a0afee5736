"""The spool: received instances on disk, and the immutable batches handed to jobs.

Layout under the spool root::

    tmp/                                   partial writes, renamed into place when complete
    received/<study>/<series>/<sop>.dcm    every instance received, newest copy per SOP UID
    received/<study>/<series>.offered.json what the last batch of that series contained
    batches/<study>/<batch>/<series>/<sop>.dcm  hard links: what one submission saw
    batches/<study>/<batch>.json           the batch's submission state and job ids

An instance is written to ``tmp/`` and renamed over its final name (``os.replace``), so a
reader sees either the old complete file or the new complete file. An instance sent again
replaces the earlier copy deterministically (same SOP Instance UID, same name). A batch
holds hard links to the series' files at the moment the study went quiet; because a re-sent
instance replaces the *name* in ``received/`` with a new file, the batch a job reads never
changes under it, while a later batch gets the whole series again, re-sent instances
included, for the job's next version.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from habitus.errors import InputRefused
from habitus.jobs import Origin

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
BatchState = Literal["pending", "submitted", "refused"]


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
        self.tmp_dir = root / "tmp"
        self.received_dir = root / "received"
        self.batches_dir = root / "batches"
        for d in (self.tmp_dir, self.received_dir, self.batches_dir):
            d.mkdir(parents=True, exist_ok=True)

    # writing one instance
    def write_temp(self, chunks: list[bytes]) -> Path:
        """Write an instance's bytes to a new temporary file in the spool and return it."""
        tmp = self.tmp_dir / f"{uuid.uuid4().hex}.part"
        with tmp.open("wb") as f:
            for chunk in chunks:
                f.write(chunk)
            if self.fsync:
                f.flush()
                os.fsync(f.fileno())
        return tmp

    def instance_path(self, key: SeriesKey, sop_instance_uid: str) -> Path:
        return self.series_dir(key) / f"{sop_instance_uid}.dcm"

    def series_dir(self, key: SeriesKey) -> Path:
        return self.received_dir / key.study_instance_uid / key.series_instance_uid

    def commit(self, tmp: Path, key: SeriesKey, sop_instance_uid: str) -> Path:
        """Move a complete temporary file to its final name, replacing an earlier copy."""
        final = self.instance_path(key, sop_instance_uid)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
        return final

    def discard(self, tmp: Path) -> None:
        tmp.unlink(missing_ok=True)

    def clear_tmp(self) -> None:
        """Remove partial writes left by a process that stopped mid-write."""
        for part in self.tmp_dir.glob("*.part"):
            part.unlink(missing_ok=True)

    # batches
    def snapshot(
        self, study_instance_uid: str, series_instance_uids: list[str], origin: Origin
    ) -> Batch:
        """Hard-link the series' current files into a new batch and record it as pending."""
        now = datetime.now(UTC)
        batch_id = f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"
        directory = self.batches_dir / study_instance_uid / batch_id
        count = 0
        for series in sorted(series_instance_uids):
            key = SeriesKey(study_instance_uid, series)
            target = directory / series
            target.mkdir(parents=True, exist_ok=True)
            linked = {}
            for src in sorted(self.series_dir(key).glob("*.dcm")):
                os.link(src, target / src.name)
                linked[src.name] = _signature(src)
                count += 1
            _write_json(self._offered_path(key), linked)
        record = BatchRecord(
            study_instance_uid=study_instance_uid,
            batch_id=batch_id,
            series_instance_uids=sorted(series_instance_uids),
            instances=count,
            origin=origin,
            created_at=now,
        )
        batch = Batch(directory, record)
        self.save_batch(batch)
        return batch

    def save_batch(self, batch: Batch) -> None:
        _write_json(batch.record_path, batch.record.model_dump(mode="json"))

    def pending_batches(self) -> list[Batch]:
        """Batches recorded but not yet submitted (oldest first): to resubmit after restart."""
        found = []
        for record_path in sorted(self.batches_dir.glob("*/*.json")):
            record = BatchRecord.model_validate_json(record_path.read_bytes())
            if record.state == "pending":
                found.append(Batch(record_path.with_suffix(""), record))
        return sorted(found, key=lambda b: b.record.created_at)

    # recovery
    def unoffered_series(self) -> Iterator[SeriesKey]:
        """Series whose files differ from what their last batch held (or that have none)."""
        for study in sorted(p for p in self.received_dir.iterdir() if p.is_dir()):
            for series in sorted(p for p in study.iterdir() if p.is_dir()):
                key = SeriesKey(study.name, series.name)
                current = {f.name: _signature(f) for f in series.glob("*.dcm")}
                if current and current != _read_json(self._offered_path(key)):
                    yield key

    def remove_batch(self, batch: Batch) -> None:
        shutil.rmtree(batch.directory, ignore_errors=True)
        batch.record_path.unlink(missing_ok=True)

    def _offered_path(self, key: SeriesKey) -> Path:
        study_dir = self.received_dir / key.study_instance_uid
        return study_dir / f"{key.series_instance_uid}.offered.json"


def _signature(path: Path) -> list[int]:
    """Identifies one version of a file: a replaced file has a new inode."""
    st = path.stat()
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def _write_json(path: Path, content: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(content, sort_keys=True))
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
