"""Worker heartbeats in Redis: counted per queue while fresh, gone when lapsed or withdrawn."""

from __future__ import annotations

import time

import redis

from habitus.liveness import beat, leave, live_workers, workers_key
from tests.service.support import redis_client_fixture  # noqa: F401  (fixture)


def test_a_beat_counts_on_its_queues_only(redis_client: redis.Redis) -> None:
    assert live_workers(redis_client, "analyze") == 0
    beat(redis_client, ["analyze", "deliver"], "celery@a:1", ttl_s=30)
    beat(redis_client, ["deliver"], "celery@b:2", ttl_s=30)
    assert live_workers(redis_client, "analyze") == 1
    assert live_workers(redis_client, "deliver") == 2
    beat(redis_client, ["analyze"], "celery@a:1", ttl_s=30)  # the same worker again
    assert live_workers(redis_client, "analyze") == 1


def test_a_lapsed_beat_no_longer_counts(redis_client: redis.Redis) -> None:
    beat(redis_client, ["analyze"], "celery@a:1", ttl_s=0.3)
    beat(redis_client, ["analyze"], "celery@b:2", ttl_s=30)
    assert live_workers(redis_client, "analyze") == 2
    time.sleep(0.5)
    assert live_workers(redis_client, "analyze") == 1
    beat(redis_client, ["analyze"], "celery@b:2", ttl_s=30)  # a beat prunes lapsed members
    assert redis_client.zcard(workers_key("analyze")) == 1


def test_the_set_of_lapsed_workers_expires(redis_client: redis.Redis) -> None:
    beat(redis_client, ["analyze"], "celery@a:1", ttl_s=0.3)
    time.sleep(0.5)
    assert live_workers(redis_client, "analyze") == 0
    assert not redis_client.exists(workers_key("analyze"))  # nothing left behind


def test_a_short_beat_does_not_cut_a_longer_one_short(redis_client: redis.Redis) -> None:
    beat(redis_client, ["analyze"], "celery@b:2", ttl_s=30)
    beat(redis_client, ["analyze"], "celery@a:1", ttl_s=0.3)
    time.sleep(0.5)
    assert live_workers(redis_client, "analyze") == 1


def test_leaving_counts_at_once(redis_client: redis.Redis) -> None:
    beat(redis_client, ["analyze", "deliver"], "celery@a:1", ttl_s=30)
    leave(redis_client, ["analyze", "deliver"], "celery@a:1")
    assert live_workers(redis_client, "analyze") == 0
    assert live_workers(redis_client, "deliver") == 0
