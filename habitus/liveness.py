"""Which queues have a live worker: the heartbeat contract between workers and the service.

A worker that can run jobs beats every ``HEARTBEAT_INTERVAL_S``: for each queue it consumes,
it enters itself in a sorted set scored with the moment its beat lapses. Readiness counts
the members whose beat has not lapsed, in one Redis call. Both sides read Redis's clock
(``TIME`` inside the scripts), so clocks that differ between hosts do not matter. A worker
that dies stops beating and drops out within ``HEARTBEAT_TTL_S``.
"""

from __future__ import annotations

import socket
from collections.abc import Collection

import redis

from habitus.config import redis_keys

HEARTBEAT_INTERVAL_S = 2.0
HEARTBEAT_TTL_S = 6.0  # three beats: one late beat does not make a live worker look dead

# Redis time in milliseconds; the scripts are replicated by effect (Redis >= 5)
_NOW_MS = "local t = redis.call('TIME'); local now = t[1] * 1000 + math.floor(t[2] / 1000)"
_BEAT = f"""
{_NOW_MS}
for _, key in ipairs(KEYS) do
    redis.call('zadd', key, now + tonumber(ARGV[2]), ARGV[1])
    redis.call('zremrangebyscore', key, '-inf', now)
    if redis.call('pttl', key) < tonumber(ARGV[2]) then  -- never cut another's beat short
        redis.call('pexpire', key, ARGV[2])
    end
end
return 1
"""
_COUNT = f"""
{_NOW_MS}
return redis.call('zcount', KEYS[1], '(' .. now, '+inf')
"""


def workers_key(queue: str) -> str:
    return redis_keys().workers(queue)


def worker_member(pid: int) -> str:
    """How the worker process ``pid`` of this host is named in the sets: whoever started it
    can withdraw it when it dies, without waiting for its beat to lapse."""
    return f"{socket.gethostname()}:{pid}"


def beat(client: redis.Redis, queues: Collection[str], member: str, ttl_s: float) -> None:
    """``member`` consumes ``queues`` and counts as live for ``ttl_s`` from now."""
    keys = [workers_key(q) for q in queues]
    if keys:
        client.eval(_BEAT, len(keys), *keys, member, max(int(ttl_s * 1000), 1))


def leave(client: redis.Redis, queues: Collection[str], member: str) -> None:
    """``member`` stops at once instead of lapsing (a clean shutdown)."""
    for queue in queues:
        client.zrem(workers_key(queue), member)


def live_workers(client: redis.Redis, queue: str) -> int:
    """How many workers consuming ``queue`` have a beat that has not lapsed."""
    return int(client.eval(_COUNT, 1, workers_key(queue)))
