"""Settings of the analysis worker (prefix ``HABITUS_``), validated at start-up."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HABITUS_", extra="ignore")

    redis_url: str = "redis://127.0.0.1:6379/0"
    # One process per GPU: concurrency = number of GPUs (1 on a CPU-only machine).
    worker_concurrency: int = Field(default=1, ge=1)
    # GPU ids handed out to worker processes in turn (CUDA_VISIBLE_DEVICES); empty: leave it.
    worker_gpus: list[str] = Field(default_factory=list)
    segmenter: Literal["auto", "model", "rules"] = "auto"  # used when a job says "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    task_soft_time_limit_s: int = Field(default=3300, ge=1)  # the job fails with a reason
    task_time_limit_s: int = Field(default=3600, ge=1)  # the process is killed
    # Redis redelivers a task not acknowledged within this time; above the hard time limit,
    # so a running task is not handed to a second worker.
    visibility_timeout_s: int = Field(default=7200, ge=1)
    # How often a worker looks for tasks unacknowledged for longer than the visibility
    # timeout (their worker died) and queues them again; adds up to this to a redelivery.
    # As often, it queues again running jobs whose lease has lapsed (worker.orphans).
    redelivery_check_s: int = Field(default=60, ge=1)
    progress_interval_s: float = Field(default=1.0, ge=0.0)  # at most one write per interval
    lease_s: float = Field(default=30.0, gt=0.0)  # a job's claim lapses this long after a crash
    # Starts of one job's analysis before it ends failed: an analysis that kills its worker
    # (a poison series) is otherwise handed out again without end.
    max_attempts: int = Field(default=3, ge=1)
    # How long job writes and lease renewals wait out an unreachable Redis (retrying with
    # backoff) before the attempt gives up and the job fails with the reason.
    redis_outage_s: float = Field(default=60.0, gt=0.0)
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _limits_in_order(self) -> WorkerSettings:
        if self.task_soft_time_limit_s >= self.task_time_limit_s:
            raise ValueError(
                "HABITUS_TASK_SOFT_TIME_LIMIT_S must be below HABITUS_TASK_TIME_LIMIT_S; found "
                f"{self.task_soft_time_limit_s} >= {self.task_time_limit_s}"
            )
        return self


@lru_cache(maxsize=1)
def get_worker_settings() -> WorkerSettings:
    return WorkerSettings()
