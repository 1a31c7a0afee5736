"""/readyz needs a live worker: jobs accepted while none runs would wait unseen."""

from __future__ import annotations

import time

import redis
from fastapi.testclient import TestClient

from habitus.jobs import ANALYZE_QUEUE, DELIVER_QUEUE
from habitus.liveness import beat
from tests.service.test_api import assert_problem


def test_not_ready_without_a_live_worker_and_says_so(client: TestClient) -> None:
    body = assert_problem(client.get("/readyz"), 503)
    assert body["checks"] == {
        "redis": "ok",
        "spool": "ok",
        "worker": "no live worker takes analysis jobs",
    }
    assert "worker: no live worker takes analysis jobs" in body["detail"]


def test_ready_while_a_worker_beats_and_not_once_its_beat_lapses(
    client: TestClient, redis_client: redis.Redis
) -> None:
    beat(redis_client, [ANALYZE_QUEUE], "celery@a:1", ttl_s=0.5)
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["worker"] == "ok"
    time.sleep(0.7)
    assert assert_problem(client.get("/readyz"), 503)["checks"]["worker"] != "ok"


def test_a_worker_on_the_delivery_queue_alone_does_not_count(
    client: TestClient, redis_client: redis.Redis
) -> None:
    beat(redis_client, [DELIVER_QUEUE], "celery@a:1", ttl_s=30)
    assert assert_problem(client.get("/readyz"), 503)["checks"]["worker"] != "ok"
