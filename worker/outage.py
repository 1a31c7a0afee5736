"""Waiting out a short Redis outage: retry with backoff for a bounded time, then give up.

A Redis restart or failover takes seconds to tens of seconds. An analysis that has run for
minutes should not be thrown away for it, nor block for ever: each Redis call made on a
job's behalf is retried with exponential backoff until ``outage_s`` has passed since its
first failure, then ``RedisOutageError`` says so, and the job fails with that reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import redis

log = logging.getLogger("worker.outage")

T = TypeVar("T")

FIRST_WAIT_S = 0.2
LONGEST_WAIT_S = 5.0

# Lost connections and timeouts; other Redis errors (a wrong type, a script error) are bugs
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)

# A Redis that stopped answering (frozen, or cut off without a reset) raises after this
# instead of hanging a call for ever; none of the worker's calls blocks on purpose.
SOCKET_TIMEOUT_S = 10.0


def redis_client(url: str) -> redis.Redis:
    """A client whose calls fail within seconds while Redis is unreachable."""
    return redis.Redis.from_url(
        url,
        health_check_interval=30,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=SOCKET_TIMEOUT_S,
    )


class RedisOutageError(Exception):
    """Redis stayed unreachable for longer than the worker waits for it."""


def patiently(
    action: Callable[[], T],
    outage_s: float,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """``action()``, retried while Redis is unreachable, for at most ``outage_s`` seconds."""
    first_failure: float | None = None
    wait = FIRST_WAIT_S
    while True:
        try:
            return action()
        except UNREACHABLE as exc:
            now = clock()
            if first_failure is None:
                first_failure = now
                log.warning(
                    "Redis unreachable while %s (%s); retrying for %g s", what, exc, outage_s
                )
            if now - first_failure >= outage_s:
                raise RedisOutageError(
                    f"Redis was unreachable for more than {outage_s:g} s "
                    f"(HABITUS_REDIS_OUTAGE_S) while {what}"
                ) from exc
            sleep(min(wait, max(first_failure + outage_s - now, 0.0)))
            wait = min(wait * 2, LONGEST_WAIT_S)
