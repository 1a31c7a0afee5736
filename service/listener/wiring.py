"""What ``run_listener`` connects to by default: the service's settings, nodes and queue."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from habitus.jobs import DicomNode, JobStore, Origin
from service.listener.completion import CountInstances, SubmitStudy
from service.listener.config import ListenerSettings
from service.settings import get_settings


def resolved_settings(settings: ListenerSettings) -> ListenerSettings:
    """The listener settings with the spool placed under the service's spool by default."""
    if settings.spool_dir is not None:
        return settings
    return settings.model_copy(update={"spool_dir": get_settings().spool_dir / "dicom"})


def default_nodes() -> Sequence[DicomNode]:
    return get_settings().dicom_nodes


def default_submit() -> SubmitStudy:
    from service.submission import submit_study

    def submit(study_dir: Path, origin: Origin) -> list[str]:
        return list(submit_study(study_dir, origin))

    return submit


def default_count_instances() -> CountInstances:
    from service.queue import job_store

    store: JobStore = job_store(get_settings().redis_url)
    return store.increment_instances_received
