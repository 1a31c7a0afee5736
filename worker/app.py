"""The Celery application of the workers: Redis broker, late acknowledgement, one task at a time.

Start a worker with ``python -m worker`` (or ``celery -A worker.app worker``). Concurrency is
the number of processes; give one per GPU (HABITUS_WORKER_CONCURRENCY, HABITUS_WORKER_GPUS).

The app is built on first use (``worker_app()``), not on import, from the settings read then
(``habitus.settings.load_settings``); it keeps them (``WorkerApp.settings``) for the tasks.
The task modules import this one and register their tasks on the app; this module imports
none of them (Celery loads them by name, ``TASK_MODULES``), so data flows one way.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from celery import Celery, signals
from kombu import Exchange, Queue

from habitus.jobs import ANALYZE_QUEUE, ANALYZE_TASK, DELIVER_QUEUE, DELIVER_TASK
from habitus.settings import Settings, load_settings
from worker.heartbeat import publish_heartbeats
from worker.logs import configure_logging

if TYPE_CHECKING:
    from worker.orphans import OrphanSweeper

TASK_MODULES = ("worker.tasks", "worker.delivery")


class WorkerApp(Celery):
    """The workers' Celery app, with the settings it was built from."""

    def __init__(self, settings: Settings) -> None:
        super().__init__("habitus", broker=settings.redis.url)
        self.settings = settings


def create_celery_app(settings: Settings) -> WorkerApp:
    app = WorkerApp(settings)
    worker = settings.worker
    # HABITUS_REDIS_PREFIX on Celery's keys
    prefixed = settings.redis.keys.celery_transport_options()
    app.conf.update(
        include=[m for m in TASK_MODULES if importlib.util.find_spec(m) is not None],
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # results live in the job record, not in a result backend
        # a task is acknowledged when it has finished, and given back if its process dies
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_concurrency=worker.worker_concurrency,
        task_soft_time_limit=worker.task_soft_time_limit_s,
        task_time_limit=worker.task_time_limit_s,
        broker_transport_options={
            "visibility_timeout": worker.visibility_timeout_s,
            # kombu sweeps every interval x throttle seconds (10 x 10 by default); one knob
            "unacked_restore_interval": worker.redelivery_check_s,
            "unacked_restore_throttle": 1,
            **prefixed,
        },
        result_backend_transport_options=prefixed,
        broker_connection_retry_on_startup=True,
        # a running analysis outlives a broker outage (its job writes and lease wait Redis
        # out, worker.outage); cancelling it would throw away minutes of work for seconds
        worker_cancel_long_running_tasks_on_connection_loss=False,
        # each queue its own exchange and routing key, as the service's producer declares them
        task_queues=tuple(
            Queue(name, Exchange(name, type="direct"), routing_key=name)
            for name in (ANALYZE_QUEUE, DELIVER_QUEUE)
        ),
        task_default_queue=ANALYZE_QUEUE,
        task_routes={
            ANALYZE_TASK: {"queue": ANALYZE_QUEUE},
            DELIVER_TASK: {"queue": DELIVER_QUEUE},
        },
        worker_hijack_root_logger=False,
    )
    return app


def send_delivery(app: Celery, job_id: str, node: str) -> None:
    """Queue the delivery of a job's results to one node (the task lives in worker.delivery)."""
    app.send_task(DELIVER_TASK, args=[job_id, node], queue=DELIVER_QUEUE)


@lru_cache(maxsize=1)
def worker_app() -> WorkerApp:
    """The worker's app from the environment's settings, built once per process."""
    app = create_celery_app(load_settings())
    publish_heartbeats(app.settings.redis.url)  # the service is ready only while a worker beats
    return app


def __getattr__(name: str) -> WorkerApp:
    """``worker.app.app``: what ``celery -A worker.app`` and the task modules look up."""
    if name == "app":
        return worker_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_orphan_sweeper: OrphanSweeper | None = None


@signals.setup_logging.connect
def _configure_logging(**_: Any) -> None:
    configure_logging(worker_app().settings.log_level)


@signals.worker_ready.connect
def _start_orphan_sweeper(**_: Any) -> None:
    """In the worker's main process: queue again the running jobs nobody runs any more."""
    import redis

    from habitus.jobs import JobStore
    from worker.orphans import OrphanSweeper

    global _orphan_sweeper
    settings = worker_app().settings
    store = JobStore(redis.Redis.from_url(settings.redis.url))
    _orphan_sweeper = OrphanSweeper(
        store,
        settings.worker.lease_s,
        lambda job_id: worker_app().send_task(ANALYZE_TASK, args=[job_id], queue=ANALYZE_QUEUE),
        interval_s=settings.worker.redelivery_check_s,
        resend_after_s=settings.worker.visibility_timeout_s,  # by then Celery would redeliver
    ).start()


@signals.worker_shutdown.connect
def _stop_orphan_sweeper(**_: Any) -> None:
    if _orphan_sweeper is not None:
        _orphan_sweeper.stop()


def assign_gpu() -> None:
    """Give each worker process its own GPU, in turn, before any model is loaded."""
    gpus = worker_app().settings.worker.worker_gpus
    if not gpus:
        return
    from billiard.process import current_process

    index = int(getattr(current_process(), "index", 0) or 0)
    os.environ["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
