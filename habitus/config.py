"""Settings read from the environment (prefix ``HABITUS_``), validated once at start-up."""

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
