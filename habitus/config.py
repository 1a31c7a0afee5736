"""Settings read from the environment (prefix ``HABITUS_``), validated once at start-up."""

from functools import lru_cache
from pathlib import Path

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from habitus.redis_keys import DEFAULT_PREFIX, RedisKeys, checked_prefix


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HABITUS_", extra="ignore")

    # Series choice
    min_slices: int = 16
    max_slice_thickness_mm: float = 5.0
    # Inference
    device: str = "auto"  # auto | cpu | cuda
    segmenter: str = "auto"  # auto | model | rules
    model_dir: Path | None = None  # defaults to the models bundled in habitus/models
    model: str | None = None  # manifest name to use when model_dir holds several models
    # Redis: every key of this deployment starts with it (habitus.redis_keys)
    redis_prefix: str = DEFAULT_PREFIX

    @field_validator("redis_prefix")
    @classmethod
    def _usable_prefix(cls, prefix: str) -> str:
        return checked_prefix(prefix)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def redis_keys() -> RedisKeys:
    """The Redis key names of this process's deployment (``HABITUS_REDIS_PREFIX``)."""
    return RedisKeys(get_settings().redis_prefix)
