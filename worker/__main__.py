"""``python -m worker``: start a Celery worker on both queues with the configured concurrency."""

from __future__ import annotations

import sys

from habitus.jobs import ANALYZE_QUEUE, DELIVER_QUEUE
from worker.app import worker_app
from worker.settings import get_worker_settings


def main(argv: list[str] | None = None) -> None:
    settings = get_worker_settings()
    args = [
        "worker",
        f"--concurrency={settings.worker_concurrency}",
        f"--queues={ANALYZE_QUEUE},{DELIVER_QUEUE}",
        f"--loglevel={settings.log_level}",
        "--without-gossip",
        "--without-mingle",
        *(sys.argv[1:] if argv is None else argv),
    ]
    worker_app().worker_main(args)


if __name__ == "__main__":
    main()
