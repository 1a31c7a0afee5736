"""Fixtures of the service tests: settings on a tmp spool, the app over real Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import SecretStr

from habitus.config import RedisSettings
from habitus.nodes import DicomNode
from habitus.settings import ApiSettings, Settings
from service.api import create_app
from tests.service.support import (  # noqa: F401  (fixtures)
    API_KEY,
    TEST_REDIS_URL,
    redis_client_fixture,
    store_fixture,
    write_ct_series,
)


@pytest.fixture
def settings(tmp_path: Path, redis_client: redis.Redis) -> Settings:
    return Settings(
        redis=RedisSettings(url=TEST_REDIS_URL),
        spool_dir=tmp_path / "spool",
        api=ApiSettings(api_keys={"tests": SecretStr(API_KEY)}, min_free_bytes=1024),
        dicom_nodes=[DicomNode(name="pacs", ae_title="PACS", host="127.0.0.1", port=11112)],
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def ct_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A study folder with one small CT series (24 slices of 64 x 64)."""
    folder = tmp_path_factory.mktemp("study")
    write_ct_series(folder / "ct")
    return folder
