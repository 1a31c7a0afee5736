"""The worker's heartbeat thread, and no heartbeat from a worker that cannot run analyses."""

from __future__ import annotations

import os
import signal
import time
from types import SimpleNamespace

import pytest
import redis

from habitus.jobs import ANALYZE_QUEUE, ANALYZE_TASK, DELIVER_QUEUE
from habitus.liveness import live_workers
from tests.service.support import TEST_REDIS_URL
from tests.worker.processes import WorkerFactory
from worker import heartbeat
from worker.heartbeat import Heartbeat


def test_beats_while_running_and_leaves_when_stopped(redis_client: redis.Redis) -> None:
    beating = Heartbeat(redis_client, [ANALYZE_QUEUE], "celery@a:1", interval_s=0.1, ttl_s=0.5)
    beating.start()
    try:
        time.sleep(1.0)  # twice the ttl: only renewed beats keep it live
        assert live_workers(redis_client, ANALYZE_QUEUE) == 1
    finally:
        beating.stop()
    assert live_workers(redis_client, ANALYZE_QUEUE) == 0


def ready_consumer(tasks: dict[str, str]) -> SimpleNamespace:
    """What Celery's worker_ready signal sends: the consumer, its app's tasks and queues."""
    queues = [SimpleNamespace(name=ANALYZE_QUEUE), SimpleNamespace(name=DELIVER_QUEUE)]
    return SimpleNamespace(
        app=SimpleNamespace(tasks=tasks),
        hostname="celery@test",
        task_consumer=SimpleNamespace(queues=queues),
    )


def test_a_ready_worker_beats_on_its_queues_until_shutdown(redis_client: redis.Redis) -> None:
    heartbeat._start(sender=ready_consumer({ANALYZE_TASK: "registered"}), redis_url=TEST_REDIS_URL)
    try:
        assert live_workers(redis_client, ANALYZE_QUEUE) == 1
        assert live_workers(redis_client, DELIVER_QUEUE) == 1
    finally:
        heartbeat._stop()
    assert live_workers(redis_client, ANALYZE_QUEUE) == 0


def test_a_worker_without_the_analysis_task_does_not_beat(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(heartbeat, "_heartbeat", None)
    # its task modules did not load
    heartbeat._start(sender=ready_consumer({}), redis_url=TEST_REDIS_URL)
    assert heartbeat._heartbeat is None
    assert live_workers(redis_client, ANALYZE_QUEUE) == 0


@pytest.mark.integration
@pytest.mark.slow
def test_a_real_worker_beats_when_ready_and_lapses_within_10_s_of_a_sigkill(
    redis_client: redis.Redis, start_worker: WorkerFactory
) -> None:
    worker = start_worker()
    deadline = time.monotonic() + 90
    while live_workers(redis_client, ANALYZE_QUEUE) == 0:
        assert worker.poll() is None and time.monotonic() < deadline, "no heartbeat"
        time.sleep(0.2)
    assert live_workers(redis_client, DELIVER_QUEUE) == 1
    os.kill(worker.pid, signal.SIGKILL)  # its main process: nothing can withdraw the beat
    killed_at = time.monotonic()
    while live_workers(redis_client, ANALYZE_QUEUE) > 0:
        assert time.monotonic() - killed_at < 10, "a dead worker still counts as live"
        time.sleep(0.2)
