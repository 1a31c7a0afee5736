"""Sending tasks to the workers by name: the service never imports the worker package."""

from __future__ import annotations

from functools import lru_cache

import redis
from celery import Celery

from habitus.config import redis_keys
from habitus.jobs import ANALYZE_QUEUE, ANALYZE_TASK, JobStore


@lru_cache(maxsize=8)
def producer(broker_url: str) -> Celery:
    """A Celery app used only to publish messages (one per broker, reused)."""
    app = Celery("habitus-service", broker=broker_url)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        task_default_queue=ANALYZE_QUEUE,
        # the queues under HABITUS_REDIS_PREFIX, where the workers consume them
        broker_transport_options=redis_keys().celery_transport_options(),
        result_backend_transport_options=redis_keys().celery_transport_options(),
    )
    return app


def send_analyze(broker_url: str, job_id: str) -> None:
    producer(broker_url).send_task(ANALYZE_TASK, args=[job_id], queue=ANALYZE_QUEUE)


@lru_cache(maxsize=8)
def redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, health_check_interval=30)


def job_store(url: str) -> JobStore:
    return JobStore(redis_client(url))


def queue_depth(url: str, queue: str = ANALYZE_QUEUE) -> int:
    """Messages waiting in a Celery queue on the Redis broker (not those being worked on)."""
    return int(redis_client(url).llen(redis_keys().queue(queue)))
