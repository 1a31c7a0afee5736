"""Leases with fencing tokens: one holder at a time, and a holder that lost its lease knows.

A lease is redis-py's ``Lock`` (a key holding its holder's random token, released and
renewed only by that holder) with a fencing token beside it: a number taken from a counter
(INCR) that only grows, in the same script that takes the key. The holder renews the key
from a background thread; a crashed holder's key lapses and the next one takes a higher
fencing token. A holder that was only paused (a long garbage collection, a frozen VM, Redis
away for a while) may find on its return that another took over: the counter has moved past
its fencing token, and every write it makes after that is refused (``Lease.is_current`` and
the fenced writes of ``worker.fenced``). A lease that lapsed while nobody took it is simply
taken back by its holder at the next renewal.

The same class serves the analysis of a job (``job_lease``) and the delivery of its results
to one node (``delivery_lease``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Literal

import redis
from redis.exceptions import LockError, LockNotOwnedError
from redis.lock import Lock

from habitus.config import redis_keys
from habitus.redis_keys import RedisKeys
from worker.outage import RedisOutageError

log = logging.getLogger("worker.lease")

# A fence counter outlives any holder (the hard time limit ends a task within hours), then
# goes so that finished jobs leave no keys behind.
FENCE_TTL_MS = 7 * 24 * 3600 * 1000

# the key, and the next fencing token, taken together or not at all
_ACQUIRE = """
if redis.call('exists', KEYS[1]) == 1 then return 0 end
local fence = redis.call('incr', KEYS[2])
redis.call('pexpire', KEYS[2], ARGV[3])
redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
return fence
"""
# still ours: extend it; lapsed and nobody took it since (the counter is still our fencing
# token): take it back; otherwise it is lost
_RENEW = """
local holder = redis.call('get', KEYS[1])
if holder == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[3]) end
if not holder and redis.call('get', KEYS[2]) == ARGV[2] then
    redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[3])
    return 1
end
return 0
"""


class LeaseLostError(Exception):
    """Another holder took the lease over: this one must not write or send anything more."""


def lease_key(job_id: str) -> str:
    return redis_keys().job_lease(job_id)


class Lease(Lock):
    """A renewed lock on ``key`` with fencing tokens counted under ``RedisKeys.fence(key)``.

    Why not redis-py's ``Lock`` alone (as the retention sweeper uses it): its token is
    random and lives only in the key, so once the key has lapsed a returning holder cannot
    tell "nobody took it" from "another took it, wrote its results and released it". It
    would have to drop its work at every lapse (a Redis outage longer than the lease would
    end every running analysis, which ``HABITUS_REDIS_OUTAGE_S`` promises to ride out) or
    risk overwriting a successor's job record. The counter answers that question, and it is
    what the job record's writes are conditioned on (``worker.fenced``: WATCH on the counter,
    the write refused unless it still holds ``fence_token``). So taking the key also takes
    the next fencing token (``do_acquire``), and renewing may take a lapsed key back only
    while the counter is unchanged (``do_reacquire``); the token, ``release``, ``owned`` and
    ``locked`` are redis-py's.

    ``outage_s`` bounds how long renewals may fail in a row (Redis unreachable) before
    ``raise_if_lost`` reports the outage; within it, renewals retry with backoff.
    """

    def __init__(self, client: redis.Redis, key: str, ttl_s: float, outage_s: float = 60.0) -> None:
        # the renewal thread renews with the token the acquiring thread took: not thread-local
        super().__init__(client, key, timeout=max(ttl_s, 0.001), blocking=False, thread_local=False)
        self.fence_key = RedisKeys.fence(key)
        self.ttl_ms = max(int(ttl_s * 1000), 1)
        self.outage_s = outage_s
        self.fence_token = 0  # 0: not held; tokens start at 1
        self._lost = threading.Event()
        self._unreachable_since: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def do_acquire(self, token: str | bytes) -> bool:
        fence = int(
            self.redis.eval(
                _ACQUIRE, 2, self.name, self.fence_key, token, self.ttl_ms, FENCE_TTL_MS
            )
        )
        if not fence:
            return False
        self.fence_token = fence
        self._thread = threading.Thread(target=self._renew, name="lease", daemon=True)
        self._thread.start()
        return True

    def do_reacquire(self) -> Literal[True]:
        renewed = self.redis.eval(
            _RENEW, 2, self.name, self.fence_key, self.local.token, self.fence_token, self.ttl_ms
        )
        if not renewed:
            raise LockNotOwnedError("the lease was taken over", lock_name=self.name)
        return True

    def remaining_s(self) -> float:
        """Seconds until the current holder's lease lapses unless renewed (0 if free)."""
        return max(int(self.redis.pttl(self.name)), 0) / 1000.0

    def is_current(self) -> bool:
        """Whether no one has taken the lease since this holder did (asks Redis)."""
        current = self.redis.get(self.fence_key)
        return self.fence_token > 0 and current is not None and int(current) == self.fence_token

    def raise_if_lost(self) -> None:
        """Raise when a renewal found the lease taken over, or Redis away for too long.

        Cheap (no Redis call): the renewal thread keeps the answer.
        """
        if self._lost.is_set():
            raise LeaseLostError(f"{self.name}: token {self.fence_token} was superseded")
        since = self._unreachable_since
        if since is not None and time.monotonic() - since > self.outage_s:
            raise RedisOutageError(
                f"Redis was unreachable for more than {self.outage_s:g} s "
                "(HABITUS_REDIS_OUTAGE_S); the lease could not be renewed"
            )

    def release(self) -> None:
        """Stop renewing and give the key up if it is still ours (else it is another's)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.local.token is not None:
            # lapsed, or taken over: nothing of ours to delete
            with contextlib.suppress(LockNotOwnedError):
                super().release()

    def _renew(self) -> None:
        interval = self.ttl_ms / 3000.0
        wait, failures = interval, 0
        while not self._stop.wait(wait):
            try:
                self.reacquire()
            except LockError:
                log.warning(
                    "lease %s was taken over (token %d superseded)", self.name, self.fence_token
                )
                self._lost.set()
                return
            except redis.RedisError as exc:
                # Redis away: try again sooner, backing off up to the renewal interval
                if self._unreachable_since is None:
                    self._unreachable_since = time.monotonic()
                    log.warning("lease %s not renewed (%s); retrying", self.name, exc)
                failures += 1
                wait = min(0.1 * 2**failures, interval)
                continue
            self._unreachable_since, wait, failures = None, interval, 0


def job_lease(client: redis.Redis, job_id: str, ttl_s: float, outage_s: float = 60.0) -> Lease:
    """The lease of one job's analysis."""
    return Lease(client, lease_key(job_id), ttl_s, outage_s)


def delivery_lease(
    client: redis.Redis, keys: RedisKeys, job_id: str, node: str, ttl_s: float
) -> Lease:
    """The lease of one job's delivery to one node."""
    return Lease(client, keys.delivery_lease(job_id, node), ttl_s)
