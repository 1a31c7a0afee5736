"""Fixtures shared by every test package, and this test run's own keys on the shared Redis."""

import contextlib
import os
import secrets
from pathlib import Path
from typing import NoReturn

import pytest
import redis

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

# The Redis of the tests, which other runs (and anything else) may use at the same time: a
# run writes only keys under a prefix of its own and deletes those, never a whole database.
TEST_REDIS_URL = "redis://127.0.0.1:6379/13"
REDIS_PREFIX = f"habitus-test-{os.getpid()}-{secrets.token_hex(4)}:"
# Read by the product in this process and inherited by every process the tests start; chosen
# anew even when set already, so that a run never works on (and deletes) another's keys.
os.environ["HABITUS_REDIS_PREFIX"] = REDIS_PREFIX


def delete_keys(client: redis.Redis, prefix: str = REDIS_PREFIX) -> int:
    """Delete the keys under ``prefix``, a prefix of this run, and no others; how many."""
    if not prefix.startswith(REDIS_PREFIX):
        raise ValueError(f"{prefix!r} is not a prefix of this run's keys ({REDIS_PREFIX!r})")
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        batch.append(key)
        if len(batch) == 1000:
            deleted += int(client.unlink(*batch))
            batch.clear()
    if batch:
        deleted += int(client.unlink(*batch))
    return deleted


def pytest_report_header() -> str:
    return f"redis: {TEST_REDIS_URL}, keys under {REDIS_PREFIX}"


def pytest_sessionfinish() -> None:
    """The run's keys go with it, whichever test left them (a killed worker's, say)."""
    with contextlib.suppress(redis.RedisError):  # Redis away: nothing we can delete
        delete_keys(redis.Redis.from_url(TEST_REDIS_URL, socket_timeout=10))


def missing(what: str) -> NoReturn:
    """Skip a test that lacks data, a tool or a service; under CI (CI=true) fail instead, so
    that a run cannot pass by skipping what it was meant to exercise."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} (CI=true: a missing requirement is a failure)", pytrace=False)
    pytest.skip(what)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real scans beside the checkout (../shared/data)."""
    if not SHARED_DATA.is_dir():
        missing(f"real test scans not found at {SHARED_DATA} (expected ../shared/data)")
    return SHARED_DATA
