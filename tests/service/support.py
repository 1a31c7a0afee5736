"""Helpers shared by the service and worker tests: the run's Redis keys, synthetic studies."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from habitus.jobs import JobStore
from habitus.phantoms.torso import synthetic_torso
from habitus.phantoms.write_dicom import axial_geometry, write_series
from tests.conftest import TEST_REDIS_URL, delete_keys, missing

API_KEY = "test-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def redis_available(url: str = TEST_REDIS_URL) -> bool:
    try:
        return bool(redis.Redis.from_url(url).ping())
    except redis.RedisError:
        return False


@pytest.fixture(name="redis_client")
def redis_client_fixture() -> Iterator[redis.Redis]:
    """A client of the test Redis; the run's keys are deleted before and after the test."""
    if not redis_available():
        missing(f"Redis is not reachable at {TEST_REDIS_URL}")
    client = redis.Redis.from_url(TEST_REDIS_URL)
    delete_keys(client)
    yield client
    delete_keys(client)


@pytest.fixture(name="store")
def store_fixture(redis_client: redis.Redis) -> JobStore:
    return JobStore(redis_client)


def write_ct_series(
    folder: Path,
    slices: int = 24,
    size: int = 64,
    study_uid: str | None = None,
    series_number: int = 1,
    description: str = "Synthetic CT",
    seed: int = 0,
) -> list[Path]:
    """A small synthetic torso CT series, one file per slice."""
    shape = (slices, size, size)
    spacing = (2.5, 400.0 / size, 400.0 / size)
    hu, _ = synthetic_torso(shape, spacing, seed=seed)
    return write_series(
        folder,
        hu,
        axial_geometry(shape, spacing),
        study_uid=study_uid,
        series_number=series_number,
        series_description=description,
    )


def zip_files(files: list[Path], root: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(root).as_posix())
    return buffer.getvalue()
