"""``python -m worker``: start a Celery worker on both queues with the configured concurrency."""

from __future__ import annotations

import sys

from habitus.jobs import ANALYZE_QUEUE, DELIVER_QUEUE
from worker.app import worker_app


def main(argv: list[str] | None = None) -> None:
    app = worker_app()
    settings = app.settings
    args = [
        "worker",
        f"--concurrency={settings.worker.worker_concurrency}",
        f"--queues={ANALYZE_QUEUE},{DELIVER_QUEUE}",
        f"--loglevel={settings.log_level}",
        "--without-gossip",
        "--without-mingle",
        *(sys.argv[1:] if argv is None else argv),
    ]
    app.worker_main(args)


if __name__ == "__main__":
    main()
