"""Fixtures of the worker tests: the test Redis database and a queued job of a small CT."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.service.support import (  # noqa: F401  (fixtures)
    redis_client_fixture,
    store_fixture,
    write_ct_series,
)
from tests.worker.processes import (  # noqa: F401  (fixtures)
    private_redis_fixture,
    start_worker_fixture,
)


@pytest.fixture(scope="session")
def small_ct(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A study folder with one CT series of 24 slices of 128 x 128."""
    folder = tmp_path_factory.mktemp("small-ct")
    write_ct_series(folder / "ct", slices=24, size=128)
    return folder
