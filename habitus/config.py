"""The core's settings: analysis defaults and Redis (prefix ``HABITUS_``).

``CoreSettings`` is the part of the product's one settings model (``habitus.settings``) that
the core itself reads: the series rules, the model folder, the segmenter and device an
analysis uses unless told otherwise, and where the job store lives. The core cannot import
the rest of the model (``habitus.jobs``, below the model, reads its key prefix from here), so
the product's ``Settings`` extends this class.
"""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from habitus.redis_keys import DEFAULT_PREFIX, RedisKeys, checked_prefix

SegmenterSetting = Literal["auto", "model", "rules"]
DeviceSetting = Literal["auto", "cpu", "cuda"]


class RedisSettings(BaseSettings):
    """Where the job store and Celery's broker live (``HABITUS_REDIS_*``)."""

    model_config = SettingsConfigDict(env_prefix="HABITUS_REDIS_", extra="ignore")

    url: str = "redis://127.0.0.1:6379/0"
    # every key of this deployment starts with it (habitus.redis_keys)
    prefix: str = DEFAULT_PREFIX
    # how long job writes and lease renewals wait out an unreachable Redis (retrying with
    # backoff) before the attempt gives up and the job fails with the reason
    outage_s: float = Field(default=60.0, gt=0.0)

    @field_validator("prefix")
    @classmethod
    def _usable_prefix(cls, prefix: str) -> str:
        return checked_prefix(prefix)

    @property
    def keys(self) -> RedisKeys:
        return RedisKeys(self.prefix)


class CoreSettings(BaseSettings):
    """The analysis section, and the Redis section the job store needs."""

    model_config = SettingsConfigDict(env_prefix="HABITUS_", extra="ignore")

    # Series choice
    min_slices: int = 16
    max_slice_thickness_mm: float = 5.0
    # Inference: what `habitus analyze` uses unless told, and a job that says "auto"
    segmenter: SegmenterSetting = "auto"
    device: DeviceSetting = "auto"
    model_dir: Path | None = None  # defaults to the models bundled in habitus/models
    model: str | None = None  # manifest name to use when model_dir holds several models

    redis: RedisSettings = Field(default_factory=RedisSettings)


@lru_cache(maxsize=1)
def get_settings() -> CoreSettings:
    """The core's settings of this process, read from the environment once."""
    return CoreSettings()


def redis_keys() -> RedisKeys:
    """The Redis key names of this process's deployment (``HABITUS_REDIS_PREFIX``)."""
    return get_settings().redis.keys
