"""Creating jobs for the worker tests the way the service does."""

from __future__ import annotations

from pathlib import Path

import pydicom

from habitus.config import RedisSettings
from habitus.jobs import JobRecord, JobStore, Origin, OriginKind
from habitus.settings import Settings
from service.submission import JobOptions, submit_study
from tests.service.support import TEST_REDIS_URL


def queue_job(
    study: Path,
    spool: Path,
    store: JobStore,
    destinations: list[str] | None = None,
    send: bool = False,
) -> JobRecord:
    """Create a job as the service does; ``send`` also puts the analyze task on the queue."""
    settings = Settings(redis=RedisSettings(url=TEST_REDIS_URL), spool_dir=spool)
    [job_id] = submit_study(
        study,
        Origin(kind=OriginKind.REST),
        destinations=destinations or [],
        options=JobOptions(segmenter="rules"),
        settings=settings,
        store=store,
        send=None if send else (lambda _: None),
    )
    return store.get(job_id)


def slices_in_order(folder: Path) -> list[Path]:
    """A job's input files by instance number: their names are SOP Instance UIDs, which say
    nothing of the order (files picked by name could be the two ends, leaving no gap)."""
    return sorted(
        folder.iterdir(),
        key=lambda path: int(pydicom.dcmread(path, stop_before_pixels=True).InstanceNumber),
    )
