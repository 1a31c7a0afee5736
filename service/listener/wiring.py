"""The listener of a deployment, wired to its spool, known nodes, job submission and Redis.

``habitus serve`` and ``python -m service.listener`` both build their listener here.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

from habitus.jobs import Origin
from habitus.settings import Settings
from service.listener.server import Listener
from service.queue import job_store
from service.submission import submit_study

log = logging.getLogger(__name__)


def deployment_listener(settings: Settings) -> Listener:
    """The listener these settings describe (not started): its spool defaults to the
    service's, received studies are submitted as jobs, their instances counted in Redis."""

    def submit(study_dir: Path, origin: Origin) -> list[str]:
        return submit_study(study_dir, origin, settings=settings)

    return Listener(
        settings.listener.model_copy(update={"spool_dir": settings.listener_spool_dir}),
        submit,
        settings.dicom_nodes,
        count_instances=job_store(settings.redis.url).increment_instances_received,
    )


def run_listener(settings: Settings, stop: threading.Event | None = None) -> None:
    """Run the deployment's listener until SIGTERM/SIGINT (or ``stop`` is set)."""
    listener = deployment_listener(settings)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    listener.start()
    try:
        stop.wait()
    finally:
        log.info("DICOM listener stopping")
        listener.stop()
