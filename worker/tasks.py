"""The analyze task: the payload is a job id; the job record says everything else."""

from __future__ import annotations

import logging
from functools import lru_cache, partial

import redis
from celery import Task

from habitus.jobs import ANALYZE_TASK, JobStore
from worker.analysis import JobRunner, LeaseHeldError
from worker.app import app, send_delivery
from worker.segmenters import segmenter_for
from worker.settings import get_worker_settings

log = logging.getLogger("worker.tasks")


@lru_cache(maxsize=1)
def job_runner() -> JobRunner:
    """One runner per process: one Redis connection pool, one segmenter cache."""
    settings = get_worker_settings()
    store = JobStore(redis.Redis.from_url(settings.redis_url, health_check_interval=30))
    return JobRunner(store, settings, segmenter_for, partial(send_delivery, app))


@app.task(name=ANALYZE_TASK, bind=True, max_retries=None)
def analyze_job(self: Task, job_id: str) -> str | None:
    """Run one job to a final state; safe to run again for the same job."""
    try:
        state = job_runner().run(job_id)
    except LeaseHeldError as held:
        log.info(
            "job %s is running in another worker; checking again in %.0f s",
            job_id,
            held.retry_in_s,
            extra={"job_id": job_id},
        )
        raise self.retry(countdown=held.retry_in_s) from held
    return state.value if state is not None else None
