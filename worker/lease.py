"""A job's lease: at most one worker runs a job at a time, and a crashed worker's claim lapses.

Redis redelivers a task whose worker died, but also (after the visibility timeout) one whose
worker is still busy. The lease tells the two apart: the running worker renews it from a
background thread; a second worker that finds it held waits and tries again later.
"""

from __future__ import annotations

import threading
import uuid

import redis

from habitus.jobs import KEY_PREFIX

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


def lease_key(job_id: str) -> str:
    return f"{KEY_PREFIX}:job:{job_id}:lease"


class JobLease:
    def __init__(self, client: redis.Redis, job_id: str, ttl_s: float) -> None:
        self.redis = client
        self.key = lease_key(job_id)
        self.ttl_ms = max(int(ttl_s * 1000), 1)
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> bool:
        """Take the lease and start renewing it; False when another worker holds it."""
        if not self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms):
            return False
        self._thread = threading.Thread(target=self._renew, name="job-lease", daemon=True)
        self._thread.start()
        return True

    def remaining_s(self) -> float:
        """Seconds until the current holder's lease lapses unless renewed (0 if free)."""
        return max(int(self.redis.pttl(self.key)), 0) / 1000.0

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.redis.eval(_RELEASE, 1, self.key, self.token)

    def _renew(self) -> None:
        interval = self.ttl_ms / 3000.0
        while not self._stop.wait(interval):
            try:
                self.redis.eval(_RENEW, 1, self.key, self.token, self.ttl_ms)
            except redis.RedisError:
                continue  # Redis briefly away: try again at the next interval
