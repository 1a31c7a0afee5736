"""The worker's heartbeat: readiness of the service counts workers that are alive and able.

When the worker's main process is ready (it consumes its queues), a daemon thread beats every
``HEARTBEAT_INTERVAL_S`` into the sorted set of each queue it consumes (``habitus.liveness``).
A worker whose analysis task did not register (the product failed to import) never beats.
A worker that dies stops beating and lapses; a clean shutdown leaves at once.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Collection
from functools import partial
from typing import Any

import redis
from celery import signals

from habitus.jobs import ANALYZE_QUEUE, ANALYZE_TASK
from habitus.liveness import HEARTBEAT_INTERVAL_S, HEARTBEAT_TTL_S, beat, leave, worker_member

log = logging.getLogger("worker.heartbeat")


class Heartbeat:
    """Beats for ``member`` on ``queues`` from a daemon thread until stopped."""

    def __init__(
        self,
        client: redis.Redis,
        queues: Collection[str],
        member: str,
        interval_s: float = HEARTBEAT_INTERVAL_S,
        ttl_s: float = HEARTBEAT_TTL_S,
    ) -> None:
        self.redis, self.queues, self.member = client, tuple(queues), member
        self.interval_s, self.ttl_s = interval_s, ttl_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="habitus-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._beat()  # live from the moment the worker is ready, not one interval later
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            leave(self.redis, self.queues, self.member)
        except redis.RedisError as exc:  # it lapses on its own
            log.info("heartbeat not withdrawn: %s", exc)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._beat()

    def _beat(self) -> None:
        try:
            beat(self.redis, self.queues, self.member, self.ttl_s)
        except redis.RedisError as exc:  # Redis away: the next beat tries again
            log.info("heartbeat not written: %s", exc)


_heartbeat: Heartbeat | None = None


def publish_heartbeats(redis_url: str) -> None:
    """Beat into Redis at ``redis_url`` from each worker's main process once it is ready,
    until it shuts down."""
    signals.worker_ready.connect(partial(_start, redis_url=redis_url), weak=False)
    signals.worker_shutdown.connect(_stop, weak=False)


def _start(sender: Any = None, *, redis_url: str, **_: Any) -> None:
    global _heartbeat
    if ANALYZE_TASK not in sender.app.tasks:
        log.error("task %s is not registered: this worker cannot run analyses", ANALYZE_TASK)
        return
    consumer = getattr(sender, "task_consumer", None)
    queues = [q.name for q in consumer.queues] if consumer is not None else [ANALYZE_QUEUE]
    member = worker_member(os.getpid())
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    _heartbeat = Heartbeat(client, queues, member).start()
    log.info("heartbeat every %.0f s on %s", HEARTBEAT_INTERVAL_S, ", ".join(queues))


def _stop(**_: Any) -> None:
    if _heartbeat is not None:
        _heartbeat.stop()
