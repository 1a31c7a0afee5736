"""The analyze task: the payload is a job id; the job record says everything else."""

from __future__ import annotations

import logging
from functools import lru_cache, partial
from typing import Any

from billiard.einfo import ExceptionInfo
from celery import Task, shared_task, signals
from celery.exceptions import TimeLimitExceeded

from habitus.jobs import ANALYZE_TASK, JobStore
from worker.app import assign_gpu, send_delivery, worker_app
from worker.outage import RedisOutageError, redis_client
from worker.runner import JobRunner, LeaseHeldError
from worker.segmenters import segmenter_for

log = logging.getLogger("worker.tasks")


@lru_cache(maxsize=1)
def job_runner() -> JobRunner:
    """One runner per process: one Redis connection pool, one segmenter cache."""
    app = worker_app()
    store = JobStore(redis_client(app.settings.redis.url))
    return JobRunner(store, app.settings, segmenter_for, partial(send_delivery, app))


def preload() -> None:
    """Prepare a new pool process before its first job: the default segmenter (an ONNX
    session on the GPU takes seconds to create) and the job store."""
    settings = worker_app().settings
    job_runner()
    try:
        segmenter_for(settings.segmenter, settings.device)
    except Exception as exc:  # the first job loads it again and fails with the reason
        log.warning(
            "segmenter %s on %s not loaded ahead of the first job: %s",
            settings.segmenter,
            settings.device,
            exc,
        )


@signals.worker_process_init.connect
def _init_process(**_: Any) -> None:
    """A new pool process: its GPU first, then what its first job would otherwise load.

    The worker imports this module (Celery's ``include``) before it starts its pool.
    """
    assign_gpu()
    preload()


class AnalyzeTask(Task):
    """Ends the job failed when its task fails outside the runner's own error handling.

    Celery calls ``on_failure`` in the worker's main process when it kills a pool process
    at the hard time limit, and in the pool process for an exception the runner did not
    turn into a final state. Both messages are acknowledged, so no one else would.
    """

    def on_failure(
        self,
        exc: BaseException,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: ExceptionInfo | None,
    ) -> None:
        job_id = str(args[0]) if args else str(kwargs.get("job_id", ""))
        if not job_id:
            return
        if isinstance(exc, LeaseHeldError) or isinstance(exc.__context__, LeaseHeldError):
            return  # another worker holds the job (its retry was not queued): that one ends it
        if isinstance(exc, RedisOutageError):
            # the record cannot be written now; once Redis is back, the orphan check finds
            # the job running without a lease and sends it again (attempts are capped)
            log.error("job %s stopped: %s", job_id, exc, extra={"job_id": job_id})
            return
        runner = job_runner()
        try:
            if isinstance(exc, TimeLimitExceeded):
                limit = exc.args[0] if exc.args else runner.settings.worker.task_time_limit_s
                runner.fail_stopped(job_id, float(limit))
            else:
                runner.fail_unexpected(job_id, exc)
        except Exception:  # Redis away or the job deleted: the log keeps the cause
            log.exception("job %s: could not be marked failed", job_id, extra={"job_id": job_id})


# shared: Celery registers it on the worker's app when that app is finalized
@shared_task(name=ANALYZE_TASK, bind=True, base=AnalyzeTask, max_retries=None)
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
