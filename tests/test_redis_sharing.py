"""Deployments and test runs share one Redis without touching each other's keys.

Every key Habitus writes is named in ``habitus.redis_keys`` under ``HABITUS_REDIS_PREFIX``;
a test run takes a prefix of its own (tests/conftest.py) and deletes only its keys. The last
test runs part of the suite in a pytest of its own beside another client's keys.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from pydantic import ValidationError

from habitus.config import RedisSettings
from habitus.jobs import ANALYZE_QUEUE, JobNotFoundError, JobRecord, JobState, JobStore
from habitus.redis_keys import DEFAULT_PREFIX, RedisKeys
from habitus.settings import Settings
from service.queue import producer
from tests.conftest import REDIS_PREFIX, REPO_ROOT, TEST_REDIS_URL
from tests.service.support import redis_client_fixture  # noqa: F401  (fixture)
from tests.test_jobs import new_job
from worker.app import create_celery_app

OTHER_DATABASE_URL = "redis://127.0.0.1:6379/0"

# An API job round trip (`habitus serve`: REST upload, worker, results) and a worker's jobs
# (a Celery worker process): the parts of the suite that write the most kinds of keys.
REPRESENTATIVE = (
    "tests/service/test_serve.py::test_serve_starts_everything_and_stops_on_ctrl_c",
    "tests/worker/test_celery_worker.py::test_worker_runs_jobs_to_their_end",
)


def every_key(keys: RedisKeys) -> list[str]:
    job = "0" * 32
    return [
        keys.job(job), keys.jobs, keys.jobs_of_owner("tests"), keys.jobs_in_state("queued"),
        keys.owners_indexed, keys.series("1.2.3"), keys.study("1.2"), keys.instances_received,
        keys.stage_seconds("segment"), keys.stage_seconds_stages, keys.retention_deleted,
        keys.retention_lock, keys.workers(ANALYZE_QUEUE), keys.job_lease(job),
        keys.fence(keys.job_lease(job)), keys.job_resent(job), keys.delivery_lease(job, "pacs"),
        keys.queue(ANALYZE_QUEUE),
    ]  # fmt: skip


def test_every_key_name_starts_with_the_prefix() -> None:
    names = every_key(RedisKeys("site-b:"))
    assert all(n.startswith("site-b:") for n in names), names
    assert len(set(names)) == len(names)  # no two ideas share a key
    assert RedisKeys("site-b:").celery_transport_options() == {"global_keyprefix": "site-b:"}


def test_the_default_prefix_keeps_the_key_names_of_before() -> None:
    keys = RedisKeys()
    assert keys.prefix == DEFAULT_PREFIX == RedisSettings.model_fields["prefix"].default
    assert keys.job("ab") == "habitus:job:ab" and keys.jobs == "habitus:jobs"
    assert keys.instances_received == "habitus:metrics:instances_received"
    assert keys.workers(ANALYZE_QUEUE) == "habitus:workers:habitus.analyze"
    assert keys.fence(keys.job_lease("ab")) == "habitus:job:ab:lease:fence"
    # Celery's queues keep their names: messages queued before an upgrade are not stranded
    assert keys.queue(ANALYZE_QUEUE) == ANALYZE_QUEUE and keys.celery_transport_options() == {}


@pytest.mark.parametrize(
    "prefix", ["", "habitus", "a*:", "a?:", "[ab]:", "a b:", "é:", "a" * 64 + ":"]
)
def test_a_prefix_that_could_reach_other_keys_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="HABITUS_REDIS_PREFIX"):
        RedisKeys(prefix)
    with pytest.raises(ValidationError, match="HABITUS_REDIS_PREFIX"):
        RedisSettings(prefix=prefix)


def test_the_run_and_the_processes_it_starts_use_its_prefix() -> None:
    assert REDIS_PREFIX.startswith("habitus-test-")
    assert JobStore(redis.Redis.from_url(TEST_REDIS_URL)).keys.prefix == REDIS_PREFIX
    worker = create_celery_app(Settings(redis=RedisSettings(url=TEST_REDIS_URL))).conf
    assert worker.broker_transport_options["global_keyprefix"] == REDIS_PREFIX
    assert worker.result_backend_transport_options == {"global_keyprefix": REDIS_PREFIX}
    sender = producer(TEST_REDIS_URL).conf
    assert sender.broker_transport_options == {"global_keyprefix": REDIS_PREFIX}


def a_job(store: JobStore, series: str) -> JobRecord:
    return store.create(new_job(series, study_instance_uid="1.2.3"))


def test_two_deployments_share_a_database_without_meeting(redis_client: redis.Redis) -> None:
    a = JobStore(redis_client, prefix=f"{REDIS_PREFIX}a:")
    b = JobStore(redis_client, prefix=f"{REDIS_PREFIX}b:")
    job_a, job_b = a_job(a, "1.2.3.1"), a_job(b, "1.2.3.1")  # the same series at both
    a.increment_instances_received(3)
    a.transition(job_a.id, JobState.RUNNING)

    assert [j.id for j in a.list()] == [job_a.id] and [j.id for j in b.list()] == [job_b.id]
    assert a.count_by_state()[JobState.RUNNING] == 1 and b.count_by_state()[JobState.QUEUED] == 1
    assert a.instances_received() == 3 and b.instances_received() == 0
    latest = b.latest_for_series("1.2.3.1")
    assert latest is not None and latest.id == job_b.id
    with pytest.raises(JobNotFoundError):
        a.get(job_b.id)
    b.delete(job_b.id)
    assert a.get(job_a.id).state == JobState.RUNNING


# --- a part of the suite beside another client's keys -----------------------------------------


Member = tuple[str, str, str]  # kind of key, key, the member or field within it


@dataclass
class ForeignClient:
    """Keys of another application (and of a deployment at the default prefix): planted
    before the run, checked unchanged after it, removed by the test at the end."""

    client: redis.Redis
    token: str = field(default_factory=lambda: secrets.token_hex(6))
    values: dict[bytes, tuple[Any, bool]] = field(default_factory=dict)  # key: DUMP, expires
    members: dict[Member, Any] = field(default_factory=dict)  # what each member holds

    @property
    def base(self) -> str:
        # looks like another test run's keys: a cleanup by a broad pattern deletes them
        return f"habitus-test-foreign-{self.token}:"

    def plant(self, default_deployment: bool) -> None:
        c, base = self.client, self.base
        c.set(f"{base}string", "a value")
        c.set(f"{base}expiring", "a value", ex=3600)
        c.hset(f"{base}hash", mapping={"a": "1", "b": "2"})
        c.rpush(f"{base}list", "x", "y")
        c.sadd(f"{base}set", "x", "y")
        c.zadd(f"{base}zset", {"x": 1.0, "y": 2.0})
        for key in c.scan_iter(match=f"{base}*"):
            self.values[key] = (c.dump(key), int(c.pttl(key)) > 0)
        if default_deployment:
            self._plant_default_deployment()

    def _plant_default_deployment(self) -> None:
        """Entries of a deployment at the default prefix, within the keys it would share
        with one that ignored its prefix: a job, its indexes, a live worker, a queued task."""
        c, keys, job_id = self.client, RedisKeys(), uuid.uuid4().hex
        message = json.dumps({"headers": {"task": "habitus.analyze", "id": job_id}})
        c.set(keys.job(job_id), '{"foreign": true}')
        c.zadd(keys.jobs, {job_id: 1.0})
        c.sadd(keys.jobs_in_state("queued"), job_id)
        c.zadd(keys.workers(ANALYZE_QUEUE), {f"foreign:{job_id}": 9e15})
        c.rpush(keys.queue(ANALYZE_QUEUE), message)
        c.hset("unacked", job_id, "a foreign delivery")  # kombu's unprefixed hash
        for member in [
            ("string", keys.job(job_id), ""),
            ("zset", keys.jobs, job_id),
            ("set", keys.jobs_in_state("queued"), job_id),
            ("zset", keys.workers(ANALYZE_QUEUE), f"foreign:{job_id}"),
            ("list", keys.queue(ANALYZE_QUEUE), message),
            ("hash", "unacked", job_id),
        ]:
            self.members[member] = self._read(member)

    def _read(self, member: Member) -> Any:
        c, (kind, key, item) = self.client, member
        if kind == "string":
            return c.get(key)
        if kind == "zset":
            return c.zscore(key, item)
        if kind == "set":
            return bool(c.sismember(key, item))
        if kind == "list":
            return item.encode() in list(c.lrange(key, 0, -1))
        return c.hget(key, item)

    def changed(self) -> list[str]:
        """What is no longer as planted."""
        c = self.client
        found = [
            key.decode()
            for key, (dumped, expires) in self.values.items()
            if c.dump(key) != dumped or (int(c.pttl(key)) > 0) != expires
        ]
        found += [" ".join(m) for m, held in self.members.items() if self._read(m) != held]
        return found

    def remove(self) -> None:
        c = self.client
        if self.values:
            c.delete(*self.values)
        for kind, key, item in self.members:
            if kind == "string":
                c.delete(key)
            elif kind == "zset":
                c.zrem(key, item)
            elif kind == "set":
                c.srem(key, item)
            elif kind == "list":
                c.lrem(key, 0, item)
            else:
                c.hdel(key, item)

    def names(self) -> set[bytes]:
        return set(self.values) | {key.encode() for _, key, _ in self.members}


class KeyWatch:
    """Samples the test database while a run goes on: the run's keys (``run_pattern``), and
    keys outside every test run's that were not there before (a key written unprefixed)."""

    def __init__(self, client: redis.Redis, run_pattern: str, known: set[bytes]) -> None:
        self.client, self.run_pattern = client, run_pattern
        self.before = {k for k in client.scan_iter(count=1000) if not _of_a_test_run(k)} | known
        self.seen: set[bytes] = set()
        self.outside: set[bytes] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> KeyWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self._sample()

    def _sample(self) -> None:
        for key in self.client.scan_iter(count=1000):
            if key.startswith(self.run_pattern.encode()):
                self.seen.add(key)
            elif not _of_a_test_run(key) and key not in self.before:
                self.outside.add(key)


def _of_a_test_run(key: bytes) -> bool:
    return key.startswith(b"habitus-test-")


@pytest.fixture
def foreign_clients(redis_client: redis.Redis) -> Iterator[list[ForeignClient]]:
    other = redis.Redis.from_url(OTHER_DATABASE_URL)
    clients = [ForeignClient(redis_client), ForeignClient(other)]
    try:
        clients[0].plant(default_deployment=True)
        clients[1].plant(default_deployment=False)  # database 0 may hold a real deployment
        yield clients
    finally:
        for foreign in clients:
            foreign.remove()


@pytest.mark.integration
@pytest.mark.slow
def test_a_run_of_the_suite_leaves_others_keys_alone_and_takes_its_own_away(
    redis_client: redis.Redis, foreign_clients: list[ForeignClient]
) -> None:
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *REPRESENTATIVE],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # its environment holds this run's HABITUS_REDIS_PREFIX: it must choose its own
    run_pattern = f"habitus-test-{run.pid}-"
    with KeyWatch(redis_client, run_pattern, foreign_clients[0].names()) as watch:
        output, _ = run.communicate(timeout=900)
    text = output.decode(errors="replace")
    assert run.returncode == 0 and f"{len(REPRESENTATIVE)} passed" in text, text[-4000:]

    # it worked under its own prefix: jobs, heartbeats and Celery's bookkeeping
    for part in (b":job:", b":jobs:state:", b":workers:", b"_kombu.binding.habitus.analyze"):
        assert any(part in k for k in watch.seen), (part, sorted(watch.seen)[:40])
    assert not watch.outside, f"written outside the run's prefix: {sorted(watch.outside)}"
    # ... left the other client's keys as they were, in its database and in database 0
    for foreign in foreign_clients:
        assert foreign.changed() == []
    # ... and took its own keys away
    for client in (redis_client, redis.Redis.from_url(OTHER_DATABASE_URL)):
        assert list(client.scan_iter(match=f"{run_pattern}*", count=1000)) == []
