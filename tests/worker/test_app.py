"""The Celery app's configuration: late acknowledgement, one task at a time, queue routing."""

from __future__ import annotations

import json

import redis

from habitus.config import RedisSettings, redis_keys
from habitus.jobs import ANALYZE_QUEUE, DELIVER_QUEUE, DELIVER_TASK
from habitus.settings import Settings, WorkerSettings
from service.queue import send_analyze
from tests.service.support import TEST_REDIS_URL
from worker.app import create_celery_app, send_delivery


def worker_settings(**worker: int) -> Settings:
    return Settings(redis=RedisSettings(url=TEST_REDIS_URL), worker=WorkerSettings(**worker))


def test_reliability_settings() -> None:
    app = create_celery_app(worker_settings(worker_concurrency=2))
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1 and conf.worker_concurrency == 2
    assert conf.task_soft_time_limit < conf.task_time_limit
    assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit


def test_redelivery_check_interval_is_the_one_setting() -> None:
    app = create_celery_app(worker_settings(redelivery_check_s=3))
    options = app.conf.broker_transport_options
    # kombu sweeps every interval x throttle seconds: the throttle stays 1
    assert options["unacked_restore_interval"] == 3
    assert options["unacked_restore_throttle"] == 1


def test_each_task_lands_in_its_own_queue(redis_client: redis.Redis) -> None:
    app = create_celery_app(worker_settings())
    send_delivery(app, "job-1", "pacs")
    send_analyze(TEST_REDIS_URL, "job-2")
    deliver, analyze = redis_keys().queue(DELIVER_QUEUE), redis_keys().queue(ANALYZE_QUEUE)
    assert redis_client.llen(deliver) == 1 and redis_client.llen(analyze) == 1
    message = json.loads(redis_client.lindex(deliver, 0))  # type: ignore[arg-type]
    assert message["headers"]["task"] == DELIVER_TASK
    assert message["headers"]["argsrepr"] == "['job-1', 'pacs']"
